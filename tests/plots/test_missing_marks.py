"""A missing value is never drawn or printed as a number: figures show a hatched empty mark with
"n/a (<reason>)", text says "n/a (<reason>)"."""

from __future__ import annotations

import math

import pytest

from common.formatting import fmt_or_na, is_missing, na
from common.measure.stats import Summary
from common.records import Record


def test_text_helper():
    assert fmt_or_na(None, "{:.2f}x", "no data stage") == "n/a (no data stage)"
    assert fmt_or_na(float("nan"), "{:.2f}") == "n/a (not recorded)"
    assert fmt_or_na(math.inf, "{:.2f}", "overflow") == "n/a (overflow)"
    assert fmt_or_na(0.0, "{:.2f}x") == "0.00x"  # a measured zero stays a number
    assert is_missing(None) and not is_missing(0) and na("x") == "n/a (x)"


def _capture(monkeypatch, module):
    figs = []
    monkeypatch.setattr(module, "save_figure", lambda fig, path: figs.append(fig) or path)
    return figs


def _texts(fig):
    return [t.get_text() for ax in fig.axes for t in ax.texts] + [t.get_text() for t in fig.texts]


def _filled_bar_heights(ax):
    from matplotlib.patches import Rectangle

    return [p.get_height() for p in ax.patches if isinstance(p, Rectangle) and p.get_fill()]


def _summary(v):
    return Summary.from_values([v, v * 1.01, v * 0.99], "img/s").to_dict()


def test_pipeline_amdahl_panel_marks_a_missing_bound(monkeypatch, tmp_path):
    from common.sections.pipeline_deep_dive import plot as pipeline

    cfg = {"stages_s": {"forward": _summary(0.01), "backward": _summary(0.02)}, "step_wall_s": _summary(0.03),
           "share": {"forward": 0.33, "backward": 0.67}, "label": "device resident", "bottleneck": "backward",
           "end_to_end_images_per_s": _summary(1000.0), "model_only_images_per_s": _summary(1010.0),
           "pipeline_efficiency": 0.99, "amdahl_if_model_free": None}
    rec = Record("pipeline_deep_dive", "cpu", {"configs": {"device_resident": cfg}}, {"time_utc": "now"})
    figs = _capture(monkeypatch, pipeline)
    pipeline.breakdown(rec, tmp_path / "p.png")
    texts = _texts(figs[0])
    assert "n/a (no data stage in\nthe step)" in texts or any("n/a (no data" in t for t in texts)
    assert not any(t.strip() in ("0.00x", "0.0x") for t in texts)
    amdahl = figs[0].axes[2]
    assert all(h > 0 for h in _filled_bar_heights(amdahl))
    assert len(_filled_bar_heights(amdahl)) == 1  # the one bound that exists


def test_precision_energy_panel_marks_the_row_without_a_counter(monkeypatch, tmp_path):
    from common.sections.performance_analysis import plot as performance

    rows = [{"label": "fp32", "images_per_s": _summary(100.0), "images_per_gib": 50.0, "images_per_j": 3.0},
            {"label": "bf16", "images_per_s": _summary(180.0), "images_per_gib": 80.0, "images_per_j": None,
             "energy_reason": "RAPL not readable"}]
    rec = Record("performance_analysis", "cpu", {"precision": rows, "base_levers": {"batch_size": 32}},
                 {"time_utc": "now"})
    figs = _capture(monkeypatch, performance)
    performance.precision(rec, tmp_path / "p.png")
    texts = _texts(figs[0])
    assert any("n/a (RAPL not" in t for t in texts)
    assert _filled_bar_heights(figs[0].axes[2]) == [3.0]


def test_report_and_step_breakdown_print_na_with_reason_never_nan():
    from benchmarks.step_breakdown import table
    from common.report import _f

    assert _f(None, "{:.4f} J/image", "no energy counter") == "n/a (no energy counter)"
    res = {"idle_power": {"power_w": None, "reason": "no NVML"},
           "variants": [{"name": "base", "images_per_s": {"median": 100.0}, "gpu_j_per_image": None,
                         "gpu_avg_power_w": None, "profile": {"families": {}, "reason": "no kernels"}}]}
    text = table(res)
    assert "nan" not in text.lower() and "n/a (no NVML)" in text and "n/a (no counter)" in text


def test_run_overview_marks_a_section_without_time(monkeypatch, tmp_path):
    from common.plots import common

    rec = Record("run_summary", "cpu", {"sections": {"a": {"measure_s": 2.0, "status": "ok"},
                                                     "b": {"measure_s": None, "status": "skipped"}}},
                 {"time_utc": "now"})
    figs = _capture(monkeypatch, common)
    common.run_summary_figure(rec, tmp_path / "o.png")
    texts = _texts(figs[0])
    assert any("n/a (no measurement" in t for t in texts)
    assert _filled_bar_heights(figs[0].axes[0]) == pytest.approx([0.8])  # barh: height is the bar's thickness
    assert "n/a (no wall time)" in figs[0].axes[0].get_title()
