"""The comparison's Scalability part reads the scaling records of both trees."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.comparison.compute import scalability
from common.comparison.load import Inputs, Run
from common.measure.stats import Summary
from common.records import Record


def _rows(rates: dict[int, float], ttt: dict[int, float | None]) -> list[dict]:
    return [{"workers": n, "images_per_s": Summary.from_values([v * f for f in (0.99, 1.0, 1.01)], "img/s").to_dict(),
             "weak_efficiency": {"value": v / (n * rates[1]), "ci95": [0.9, 1.0]},
             "strong_efficiency": {"value": 0.8, "ci95": [0.7, 0.9]} if n > 1 else None,
             "time_to_target_s": ttt[n], "test_accuracy": 0.995} for n, v in rates.items()]


def test_gpu_and_cpu_scaling_records_are_compared():
    g_rows = _rows({1: 15000.0, 2: 29000.0}, {1: 40.0, 2: 38.0})
    gpu = Run("cuda", Path("g"), records={"scaling": Record(
        kind="scaling", device="cuda", data={"available": True, "rows": g_rows, "scaling": [
            {"gpus": r["workers"], "images_per_s": r["images_per_s"]} for r in g_rows]})})
    cpu = Run("cpu", Path("c"), records={"scaling": Record(
        kind="scaling", device="cpu", data={"available": False, "reason": "scaling not measurable: one count",
                                            "rows": _rows({1: 50.0}, {1: None})})})
    s = scalability(Inputs(gpu, cpu))
    assert s["available"] and [r["gpus"] for r in s["rows"]] == [1, 2]
    two = s["rows"][1]
    assert two["efficiency"] == pytest.approx(29000 / 30000) and two["time_to_target_s"] == 38.0
    assert two["strong_efficiency"] == 0.8
    cp = s["cpu_processes"]
    assert cp["available"] is False and "one count" in cp["reason"] and cp["rows"][0]["processes"] == 1


def test_a_single_gpu_scaling_record_gives_its_reason():
    gpu = Run("cuda", Path("g"), records={"scaling": Record(
        kind="scaling", device="cuda", data={"available": False, "reason": "scaling not measurable: 1 GPU visible",
                                             "rows": _rows({1: 15000.0}, {1: 40.0})})})
    s = scalability(Inputs(gpu, Run("cpu", Path("c"))))
    assert not s["available"] and s["reason"] == "scaling not measurable: 1 GPU visible"
    assert s["cpu_processes"] is None
