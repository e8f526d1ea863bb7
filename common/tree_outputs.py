"""What every result tree gets beside its Markdown report, built from what is already written:
the self-contained HTML report, and CSV exports (every table of the report, every table inside
the records, and the samplers' time series) in <tree>/csv/. Also the one call that writes a run's
Chrome trace. Nothing here measures."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from common.export_csv import export_record, sampler_rows, write_rows
from common.report_html import split_sections, write_html_report

CSV_FOLDER = "csv"


def trace_path(root: Path, prefix: str) -> Path:
    return root / "metrics" / f"{prefix}trace.json"


def write_run_trace(root: Path, prefix: str, device: str, monitor: dict | None, spans: list[dict],
                    sections: list[dict], title: str) -> Path:
    from common.measure.trace import write_trace

    return write_trace(trace_path(root, prefix), monitor, spans, sections, device, title)


def report_tables(md: str) -> list[tuple[str, list[dict[str, str]]]]:
    """(name, rows) for every pipe table of a Markdown report; a table without a header row of
    names (``| | |``) gets columns ``what`` and ``value``."""
    _title, pre, sections = split_sections(md)
    out: list[tuple[str, list[dict[str, str]]]] = []
    for heading, lines in [("preamble", pre)] + sections:
        block: list[str] = []
        for line in lines + [""]:
            if line.strip().startswith("|"):
                block.append(line)
                continue
            if block:
                cells = [[c.strip() for c in r.strip().strip("|").split("|")] for r in block]
                cells = [c for c in cells if not (any(c) and all(re.fullmatch(r":?-+:?", x) for x in c if x))]
                header = cells[0] if cells else []
                if not any(header):
                    header = ["what", "value"] + [f"col{i}" for i in range(2, len(header))]
                names = [h or f"col{i}" for i, h in enumerate(header)]
                rows = [dict(zip(names, r)) for r in cells[1:]]
                n = sum(1 for name, _ in out if name.startswith(heading))
                out.append((heading if n == 0 else f"{heading} {n + 1}", rows))
                block = []
    return out


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_").lower() or "table"


def export_csvs(root: Path, prefix: str, md_path: Path | None) -> list[Path]:
    """<root>/csv/: report tables, record tables, sampler series; the files written."""
    out_dir = root / CSV_FOLDER
    written: list[Path] = []
    if md_path is not None and md_path.is_file():
        for name, rows in report_tables(md_path.read_text(encoding="utf-8")):
            if rows:
                written.append(write_rows(out_dir / f"{prefix}report_{_safe(name)}.csv", rows))
    for rec_path in sorted((root / "metrics").glob("*.json")):
        if rec_path.name.endswith("trace.json"):
            continue
        try:
            rec: dict[str, Any] = json.loads(rec_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        data = rec.get("data") if isinstance(rec, dict) else None
        if not isinstance(data, dict):
            continue
        written += export_record(out_dir / rec_path.stem, data)
        monitor = data.get("monitor") if isinstance(data.get("monitor"), dict) else None
        for which in ("cpu", "gpu"):
            rows = sampler_rows((monitor or {}).get(which))
            if rows:
                written.append(write_rows(out_dir / f"{prefix}samples_{which}.csv", rows))
    return written


def finish_tree(root: Path, prefix: str, md_path: Path) -> dict[str, Any]:
    """The HTML report beside ``md_path`` and the CSV exports; {html, csv: [...]}."""
    csvs = export_csvs(root, prefix, md_path)
    links = []
    tp = trace_path(root, prefix)
    if tp.exists():
        links.append(("trace (Perfetto)", _rel(tp, md_path.parent)))
    if csvs:
        links.append(("CSV", _rel(root / CSV_FOLDER, md_path.parent)))
    html = write_html_report(md_path, links)
    return {"html": html, "csv": csvs}


def _rel(path: Path, start: Path) -> str:
    import os

    return os.path.relpath(path, start)
