"""The self-contained HTML report: figures embedded, key numbers first, environment and method
last, missing values named; and it renders in headless Chromium (every image decoded, no console
error, not blank)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from common.browser_check import check_page, find_browser
from common.report_html import write_html_report
from common.tree_outputs import finish_tree, report_tables

MD = """# CPU analysis report

> **The MedNIST data of this run is the embedded subset**.

## Environment

| | |
|---|---|
| host | testhost |
| GPU | n/a |

## Key numbers

| | |
|---|---|
| Training | 123 img/s |

## Figures

### pipeline deep dive

![breakdown](../pipeline_deep_dive/cpu_breakdown.png)

![gone](../pipeline_deep_dive/cpu_missing.png)

Record: [cpu_pipeline_deep_dive.json](../metrics/cpu_pipeline_deep_dive.json)

## Method

- Every number was measured.
"""


def _tree(tmp_path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    root = tmp_path / "cpu_results"
    (root / "pipeline_deep_dive").mkdir(parents=True)
    (root / "reports").mkdir()
    (root / "metrics").mkdir()
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.bar(["forward", "backward", "optimizer"], [3, 5, 1], color="C1")
    ax.set_title("stage breakdown")
    fig.savefig(root / "pipeline_deep_dive" / "cpu_breakdown.png")
    plt.close(fig)
    (root / "metrics" / "cpu_pipeline_deep_dive.json").write_text(
        '{"kind": "pipeline_deep_dive", "data": {"stages": [{"name": "forward", "s": 0.1}, '
        '{"name": "backward", "s": 0.2}]}}')
    md = root / "reports" / "cpu_report.md"
    md.write_text(MD)
    return md


def test_html_is_self_contained_ordered_and_names_missing_values(tmp_path):
    md = _tree(tmp_path)
    page = write_html_report(md).read_text()
    assert page.count("data:image/png;base64,") == 1
    assert not re.search(r'<img[^>]+src="(?!data:)', page)  # nothing loaded from disk
    assert "not available: figure ../pipeline_deep_dive/cpu_missing.png was not written" in page
    assert "not available: no value in this run" in page  # the GPU cell "n/a"
    order = [page.index(f">{h}</h2>") for h in ("Key numbers", "Figures", "Environment", "Method")]
    assert order == sorted(order)
    assert '<nav><a href="#key-numbers">' in page


def test_finish_tree_writes_csv_of_report_and_record_tables(tmp_path):
    md = _tree(tmp_path)
    out = finish_tree(md.parent.parent, "cpu_", md)
    names = sorted(p.name for p in out["csv"])
    assert "cpu_report_key_numbers.csv" in names and "cpu_report_environment.csv" in names
    assert "cpu_pipeline_deep_dive__stages.csv" in names
    text = (md.parent.parent / "csv" / "cpu_pipeline_deep_dive__stages.csv").read_text().splitlines()
    assert text[0] == "name,s" and text[2] == "backward,0.2"
    assert report_tables(MD)[1] == ("Key numbers", [{"what": "Training", "value": "123 img/s"}])


@pytest.mark.skipif(find_browser() is None, reason="Chromium not installed (apt-get install chromium)")
def test_report_renders_in_headless_chromium(tmp_path):
    md = _tree(tmp_path)
    html = finish_tree(md.parent.parent, "cpu_", md)["html"]
    t0 = time.monotonic()
    r = check_page(html)
    assert time.monotonic() - t0 < 20
    assert r["images"] == 1 and r["broken"] == [] and r["widths"][0] > 0
    assert r["errors"] == [] and r["console_errors"] == []
    assert r["non_background"] > 0.02


@pytest.mark.skipif(find_browser() is None, reason="Chromium not installed (apt-get install chromium)")
def test_browser_check_catches_a_broken_image_and_a_script_error(tmp_path):
    page = tmp_path / "bad.html"
    page.write_text('<!DOCTYPE html><html><head><title>x</title></head><body><h1>x</h1>'
                    '<img alt="broken" src="data:image/png;base64,AAAA"><script>undefinedFunction()</script>'
                    '</body></html>')
    r = check_page(page, screenshot=False)
    assert r["broken"] == ["broken"]
    assert any("undefinedFunction" in e for e in r["errors"])
