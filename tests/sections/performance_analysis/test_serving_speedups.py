"""The comparison's serving speedups: like-for-like (eager fp32 on both) and best-vs-best
(each device's latency winner, each device's throughput winner within the budget)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from common.comparison.load import Run
from common.records import Record
from common.sections.performance_analysis.compare_serving import ladder_speedups

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_inference_plots import ladder  # noqa: E402


def _run(device: str, lad: dict | None) -> Run:
    rec = Record("performance_analysis", device, {"inference_ladder": lad} if lad else {}, {})
    return Run(device, Path("."), {"performance_analysis": rec},
               {"performance_analysis": Path(f"{device}_performance_analysis.json")})


def test_best_rung_and_like_for_like_speedups():
    gpu, cpu = ladder(), ladder()
    for r in gpu["rungs"]:  # a GPU ten times faster on every rung
        if r["status"] == "ok":
            r["latency"]["summary"]["values"] = [v / 10 for v in r["latency"]["summary"]["values"]]
    out, skipped = [], []
    ladder_speedups(_run("cuda", gpu), _run("cpu", cpu), out, skipped)
    by = {e["id"]: e for e in out}
    assert set(by) == {"serving.latency_batch1.eager_fp32", "serving.latency_batch1.best", "serving.throughput.budget"}
    assert by["serving.latency_batch1.eager_fp32"]["speedup"] == pytest.approx(10, rel=1e-6)
    best = by["serving.latency_batch1.best"]
    assert best["kind"] == "best-vs-best" and best["speedup"] == pytest.approx(10, rel=1e-6)
    assert "ONNX Runtime" in best["cpu"]["config"]
    assert by["serving.throughput.budget"]["speedup"] == pytest.approx(1.0)
    out, skipped = [], []
    ladder_speedups(_run("cuda", gpu), _run("cpu", None), out, skipped)
    assert out == [] and "no inference_ladder" in skipped[0]["reason"]
