"""Check that an HTML report renders in headless Chromium: every image decoded (naturalWidth > 0),
no script or console error, and a screenshot that is not blank. Used by the tests and CI;
also runnable by hand:

    python -m common.browser_check comprehensive_gpu_cpu_analysis_results/cpu_results/reports/cpu_report.html

It renders a copy of the page with a small probe script put first in <head> (the report itself
holds no script); the probe writes its findings into the DOM, which ``--dump-dom`` returns.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
PROBE = """<script>
window.__errs = [];
window.addEventListener('error', e => window.__errs.push(String(e.message || (e.target && e.target.src) || e)), true);
const __ce = console.error.bind(console);
console.error = (...a) => { window.__errs.push(a.map(String).join(' ')); __ce(...a); };
window.addEventListener('load', () => {
  const imgs = Array.from(document.images);
  const broken = imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.alt || i.src.slice(0, 60));
  const p = document.createElement('pre'); p.id = '__probe';
  p.textContent = JSON.stringify({images: imgs.length, broken: broken, errors: window.__errs,
                                  widths: imgs.map(i => i.naturalWidth)});
  document.body.appendChild(p);
});
</script>"""
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
         "--hide-scrollbars", "--allow-file-access-from-files", "--disable-extensions"]


def find_browser() -> str | None:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


def _run(browser: str, args: list[str], timeout: float, profile: Path) -> subprocess.CompletedProcess:
    cmd = [browser, *FLAGS, f"--user-data-dir={profile}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def non_background_fraction(png: Path) -> float:
    """Share of pixels that differ from the most common colour (the page background)."""
    import numpy as np
    from PIL import Image

    a = np.asarray(Image.open(png).convert("RGB")).reshape(-1, 3)
    colours, counts = np.unique(a, axis=0, return_counts=True)
    bg = colours[counts.argmax()]
    return float((np.abs(a.astype(int) - bg).sum(axis=1) > 24).mean())


def check_page(html: Path, browser: str | None = None, timeout: float = 30.0,
               size: tuple[int, int] = (1280, 2000), screenshot: bool = True) -> dict:
    """{images, broken, errors, console_errors, non_background} for ``html`` (the last only with
    ``screenshot``; raises RuntimeError
    when no browser is installed or it fails)."""
    browser = browser or find_browser()
    if browser is None:
        raise RuntimeError("no Chromium found (apt-get install chromium)")
    page = Path(html).read_text(encoding="utf-8")
    with tempfile.TemporaryDirectory(prefix="browser_check_") as tmp:
        tmpd = Path(tmp)
        probe = tmpd / "probe.html"
        probe.write_text(page.replace("<head>", "<head>" + PROBE, 1), encoding="utf-8")
        dom = _run(browser, ["--virtual-time-budget=5000", "--enable-logging=stderr", "--v=0", "--dump-dom",
                             probe.as_uri()], timeout, tmpd / "profile1")
        m = re.search(r'<pre id="__probe">(.*?)</pre>', dom.stdout, re.S)
        if not m:
            raise RuntimeError(f"{browser} returned no probe result (rc {dom.returncode}): {dom.stderr[-800:]}")
        import html as _html

        result = json.loads(_html.unescape(m.group(1)))
        result["console_errors"] = [ln for ln in dom.stderr.splitlines()
                                    if "CONSOLE" in ln and ("Uncaught" in ln or ":ERROR:" in ln)]
        if not screenshot:
            return result
        shot = tmpd / "shot.png"
        _run(browser, [f"--window-size={size[0]},{size[1]}", f"--screenshot={shot}", Path(html).resolve().as_uri()],
             timeout, tmpd / "profile2")
        if not shot.is_file():
            raise RuntimeError(f"{browser} wrote no screenshot of {html}")
        result["non_background"] = non_background_fraction(shot)
    return result


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if args else 2
    bad = 0
    for path in args:
        r = check_page(Path(path))
        ok = not r["broken"] and not r["errors"] and not r["console_errors"] and r["non_background"] > 0.02
        bad += not ok
        print(f"{'ok' if ok else 'FAILED'}: {path}: {r['images']} image(s), broken {r['broken']}, errors "
              f"{r['errors'] + r['console_errors']}, {100 * r['non_background']:.1f}% non-background pixels")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
