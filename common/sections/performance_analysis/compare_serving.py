"""Speedups of the inference ladder (performance_analysis record, ``inference_ladder``): batch-1
latency like-for-like (eager fp32 on both) and best-vs-best (each device's latency winner), and
throughput within the latency budget (each device's throughput winner)."""

from __future__ import annotations

from common.comparison import BEST_VS_BEST, LIKE_FOR_LIKE
from common.comparison.load import Run

KIND = "performance_analysis"


def _latency_side(run: Run, lad: dict, name: str):
    from common.comparison.speedups import Side

    i, r = next((i, r) for i, r in enumerate(lad["rungs"]) if r["name"] == name)
    return Side(run, KIND, [["data", "inference_ladder", "rungs", i, "latency", "summary", "values"]],
                f"{name} ({r['label']})", r["levers"], unit="ms")


def _throughput_side(run: Run, lad: dict):
    from common.comparison.speedups import Side

    w = lad["throughput_winner"]
    i, r = next((i, r) for i, r in enumerate(lad["rungs"]) if r["name"] == w["name"])
    j = next(j for j, p in enumerate(r["curve"]) if p["batch_size"] == w["batch_size"])
    return Side(run, KIND, [["data", "inference_ladder", "rungs", i, "curve", j, "images_per_s", "values"]],
                f"{w['name']}, batch {w['batch_size']}", {**r["levers"], "batch_size": w["batch_size"]},
                unit="img/s")


def ladder_speedups(g: Run, c: Run, out: list, skipped: list) -> None:
    from common.comparison.speedups import speedup_entry

    gp, cp = g.ok(KIND), c.ok(KIND)
    glad = gp.data.get("inference_ladder") if gp else None
    clad = cp.data.get("inference_ladder") if cp else None
    if not (glad and clad):
        skipped.append({"id": "serving", "metric": "inference ladder",
                        "reason": "a run's performance_analysis record has no inference_ladder"})
        return
    entries = []
    if glad["rungs"][0]["status"] == clad["rungs"][0]["status"] == "ok":
        entries.append(speedup_entry("serving.latency_batch1.eager_fp32", "inference",
                                     "serving latency, batch 1: eager fp32 on both", LIKE_FOR_LIKE,
                                     _latency_side(g, glad, "eager fp32"), _latency_side(c, clad, "eager fp32"),
                                     False, skipped=skipped))
    gw, cw = glad.get("latency_winner"), clad.get("latency_winner")
    if gw and cw:
        entries.append(speedup_entry("serving.latency_batch1.best", "inference",
                                     "serving latency, batch 1: each device's fastest agreeing rung", BEST_VS_BEST,
                                     _latency_side(g, glad, gw["name"]), _latency_side(c, clad, cw["name"]), False,
                                     headline=True, skipped=skipped))
    if glad.get("throughput_winner") and clad.get("throughput_winner"):
        budget = glad["config"]["budget_ms"], clad["config"]["budget_ms"]
        note = None if budget[0] == budget[1] else f"budgets differ: GPU {budget[0]:g} ms, CPU {budget[1]:g} ms"
        entries.append(speedup_entry("serving.throughput.budget", "inference",
                                     f"serving throughput within the {budget[0]:g} ms latency budget: each device's "
                                     "best rung and batch", BEST_VS_BEST, _throughput_side(g, glad),
                                     _throughput_side(c, clad), True, headline=True, note=note, skipped=skipped))
    out.extend(e for e in entries if e)
