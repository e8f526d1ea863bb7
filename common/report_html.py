"""A self-contained HTML page from a Markdown report of this suite (analysis, comparison or a
custom pipeline): one file that opens anywhere, every figure embedded as base64 PNG, a navigation
bar, the key numbers first, environment and method at the end, and a missing value written as
"not available: <reason>". It reads only the report and the figures it names: nothing is measured.

The Markdown it understands is the subset the reports use: headings, pipe tables, images, links,
bullet lists, block quotes, **bold** and `code`.
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

from common.atomic import write_text

FIRST = ("key numbers", "headline", "verdict", "pipeline")  # h2 sections that lead the page
LAST = ("data problems", "sampler overhead", "records", "files", "environment", "method")  # and those that close it
NA_CELLS = {"n/a", "none", "nan", ""}
NA_TEXT = "not available: no value in this run's record"
IMAGE = re.compile(r"!\[([^\]]*)\]\(([^)]+)\)")
LINK = re.compile(r"\[([^\]]+)\]\(([^)]+)\)")

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d2330;
background:#fff}
nav{position:sticky;top:0;background:#f3f5f9;border-bottom:1px solid #ccd;padding:6px 16px;font-size:13px;z-index:1}
nav a{margin-right:14px;color:#24508f;text-decoration:none;white-space:nowrap}
main{max-width:1150px;margin:0 auto;padding:8px 20px 40px}
h1{font-size:26px}h2{border-bottom:2px solid #dde;padding-bottom:4px;margin-top:32px}
table{border-collapse:collapse;margin:8px 0;font-size:13px}
td,th{border:1px solid #ccd;padding:4px 8px;vertical-align:top}
th{background:#eef1f7}img{max-width:100%;border:1px solid #eee;margin:6px 0}
blockquote{border-left:4px solid #e0a030;background:#fff7e6;margin:8px 0;padding:6px 12px}
.na{color:#8a3b12;font-style:italic}code{background:#f2f2f2;padding:0 3px}
"""


def _inline(text: str, base: Path) -> str:
    out, pos = [], 0
    for m in LINK.finditer(text):
        out.append(_escape_fmt(text[pos:m.start()]))
        out.append(f'<a href="{html.escape(m.group(2), quote=True)}">{_escape_fmt(m.group(1))}</a>')
        pos = m.end()
    out.append(_escape_fmt(text[pos:]))
    return "".join(out)


def _escape_fmt(text: str) -> str:
    t = html.escape(text, quote=False)
    t = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", t)
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", t)


def _cell(text: str, base: Path, tag: str) -> str:
    text = text.strip()
    if tag == "td" and text.lower() in NA_CELLS:
        return f'<td class="na">{NA_TEXT}</td>'
    return f"<{tag}>{_inline(text, base)}</{tag}>"


def _image(alt: str, src: str, base: Path) -> str:
    path = (base / src).resolve()
    if not path.is_file():
        return f'<p class="na">not available: figure {html.escape(src)} was not written in this run</p>'
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    mime = "image/png" if path.suffix.lower() == ".png" else "image/jpeg"
    return (f'<figure><img alt="{html.escape(alt, quote=True)}" src="data:{mime};base64,{data}">'
            f"<figcaption>{html.escape(alt)}</figcaption></figure>")


def _table(rows: list[str], base: Path) -> str:
    cells = [r.strip().strip("|").split("|") for r in rows]
    body = [c for c in cells if not all(re.fullmatch(r"\s*:?-+:?\s*", x) for x in c)]
    if not body:
        return ""
    head = "".join(_cell(x, base, "th") for x in body[0])
    trs = "".join("<tr>" + "".join(_cell(x, base, "td") for x in r) + "</tr>" for r in body[1:])
    return f"<table><thead><tr>{head}</tr></thead><tbody>{trs}</tbody></table>"


def _blocks(lines: list[str], base: Path) -> str:
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        s = line.strip()
        if not s:
            i += 1
        elif s.startswith("|"):
            j = i
            while j < len(lines) and lines[j].strip().startswith("|"):
                j += 1
            out.append(_table(lines[i:j], base))
            i = j
        elif s.startswith("- "):
            items = []
            while i < len(lines) and lines[i].strip().startswith("- "):
                items.append(f"<li>{_para(lines[i].strip()[2:], base)}</li>")
                i += 1
            out.append("<ul>" + "".join(items) + "</ul>")
        elif s.startswith(">"):
            quote = []
            while i < len(lines) and lines[i].strip().startswith(">"):
                quote.append(lines[i].strip()[1:].strip())
                i += 1
            out.append(f"<blockquote>{_para(' '.join(quote), base)}</blockquote>")
        else:
            para = []
            while i < len(lines) and lines[i].strip() and not lines[i].strip().startswith(("|", "- ", ">", "#")):
                para.append(lines[i].strip())
                i += 1
            if not para:  # a stray heading below h2 level is handled by the caller; keep going
                para, i = [s], i + 1
            out.append(_para(" ".join(para), base, block=True))
    return "\n".join(out)


def _para(text: str, base: Path, block: bool = False) -> str:
    parts, pos = [], 0
    for m in IMAGE.finditer(text):
        if text[pos:m.start()].strip():
            parts.append(_inline(text[pos:m.start()], base))
        parts.append(_image(m.group(1), m.group(2), base))
        pos = m.end()
    rest = text[pos:]
    if rest.strip():
        parts.append(_inline(rest, base))
    joined = " ".join(parts)
    return f"<p>{joined}</p>" if block and "<figure>" not in joined else joined


def _slug(text: str, used: set[str]) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "section"
    slug, n = base, 2
    while slug in used:
        slug, n = f"{base}-{n}", n + 1
    used.add(slug)
    return slug


def split_sections(md: str) -> tuple[str, list[str], list[tuple[str, list[str]]]]:
    """(title, lines before the first h2, [(h2 title, its lines)])."""
    title, pre, sections = "Report", [], []
    current: list[str] | None = None
    for line in md.splitlines():
        if line.startswith("# ") and title == "Report" and current is None:
            title = line[2:].strip()
        elif line.startswith("## "):
            current = []
            sections.append((line[3:].strip(), current))
        else:
            (pre if current is None else current).append(line)
    return title, pre, sections


def _rank(name: str) -> int:
    low = name.lower()
    if any(low.startswith(k) for k in FIRST):
        return 0
    for i, k in enumerate(LAST):
        if low.startswith(k):
            return 2 + i
    return 1


def render(md: str, base: Path, extra_links: list[tuple[str, str]] = ()) -> str:
    """The page for Markdown ``md`` whose relative paths are relative to ``base``."""
    title, pre, sections = split_sections(md)
    ordered = sorted(sections, key=lambda s: _rank(s[0]))  # stable: the report's order within each group
    used: set[str] = set()
    nav, body = [], [f"<h1>{html.escape(title)}</h1>", _blocks(pre, base)]
    for name, lines in ordered:
        sid = _slug(name, used)
        nav.append(f'<a href="#{sid}">{html.escape(name)}</a>')
        body.append(f'<section id="{sid}"><h2>{html.escape(name)}</h2>')
        chunk: list[str] = []
        for line in lines:
            m = re.match(r"^(#{3,6}) (.*)", line)
            if m:
                body.append(_blocks(chunk, base))
                chunk = []
                level = len(m.group(1))
                body.append(f'<h{level} id="{_slug(m.group(2), used)}">{_inline(m.group(2), base)}</h{level}>')
            else:
                chunk.append(line)
        body.append(_blocks(chunk, base))
        body.append("</section>")
    nav += [f'<a href="{html.escape(href, quote=True)}">{html.escape(text)}</a>' for text, href in extra_links]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width\"><title>{html.escape(title)}</title>"
            f"<style>{CSS}</style></head><body><nav>{''.join(nav)}</nav><main>{''.join(body)}</main></body></html>\n")


def write_html_report(md_path: str | Path, extra_links: list[tuple[str, str]] = ()) -> Path:
    """<report>.html beside the Markdown report ``md_path``, self-contained."""
    md_path = Path(md_path)
    page = render(md_path.read_text(encoding="utf-8"), md_path.parent, extra_links)
    return write_text(md_path.with_suffix(".html"), page)
