"""Figures and report rows of the inference ladder, drawn from a ladder result alone (rungs with
known numbers; one refused for changing predictions, one skipped with its reason)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from common.records import Record
from common.sections.performance_analysis import plot_inference as plots
from common.sections.performance_analysis.key_numbers import _ladder_rows
from common.workloads.inference_ladder import LadderConfig, latency_record, summarize


def _rung(name: str, p50: float, passed: bool = True, engine: str = "pytorch") -> dict:
    times = list(np.linspace(p50 * 0.9, p50 * 1.5, 101))
    curve = []
    for b in (1, 8, 64):
        lat = [t * (1 + b / 16) for t in times]
        curve.append({"batch_size": b, "p50_ms": float(np.median(lat)), "p99_ms": float(np.percentile(lat, 99)),
                      "images_per_s": {"values": [b / t * 1e3 for t in lat]},
                      "images_per_s_median": b / float(np.median(lat)) * 1e3, "error": None})
    return {"name": name, "label": name, "status": "ok", "levers": {"engine": engine}, "latency": latency_record(times),
            "agreement": {"top1_agreement": 1.0 if passed else 0.5, "max_abs_logit_diff": 1e-5 if passed else 3.0,
                          "passed": passed},
            "end_to_end": {"p50_ms": p50 + 0.4}, "curve": curve, "one_time_s": 2.0, "kept": passed}


def ladder() -> dict:
    cfg = LadderConfig(100, (1, 8, 64), 0.1, budget_ms=20.0, min_agreement=0.999)
    rungs = [_rung("eager fp32", 10.0), _rung("broken", 1.0, passed=False),
             _rung("ONNX Runtime", 4.0, engine="onnxruntime"),
             {"name": "CUDA graph", "label": "x", "status": "skipped", "reason": "cuda_graph needs a CUDA device",
              "levers": {"engine": "pytorch"}}]
    return summarize(rungs, cfg, ["a note"])


def test_winners_and_figures_from_the_record(tmp_path):
    lad = ladder()
    assert lad["latency_winner"]["name"] == "ONNX Runtime"  # the faster "broken" rung is refused
    assert lad["latency_winner"]["speedup_p50_vs_eager"] > 2
    rec = Record("performance_analysis", "cpu", {"inference_ladder": lad}, {"cpu_model": "test CPU"})
    for fn, name in ((plots.latency_ladder, "ladder.png"), (plots.throughput_curve, "curve.png")):
        path = fn(rec, tmp_path / name)
        with Image.open(path) as im:
            assert im.width > 500 and im.height > 200
    empty = Record("performance_analysis", "cpu", {}, {})
    assert plots.latency_ladder(empty, tmp_path / "none.png").exists()


def test_report_rows_name_both_winners():
    rows = dict(_ladder_rows(ladder()))
    winner = rows["Serving, latency winner"]
    assert "ONNX Runtime" in winner and "end to end from JPEG" in winner
    assert "within the 20 ms budget" in rows["Serving, throughput winner"]
    assert _ladder_rows(None) == []
