"""The utilization comparison: each run's samplers summarised and downsampled for the timelines,
and the ladder's rungs' device and host utilization side by side."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from common.comparison.load import Inputs, Run
from common.comparison.speedups import rung_id


def _stats(vals: list[float]) -> dict[str, Any] | None:
    vals = [v for v in vals if v is not None and math.isfinite(v)]
    if not vals:
        return None
    return {"mean": float(np.mean(vals)), "max": float(np.max(vals)), "samples": len(vals)}


def _downsample(t: list[float], series: dict[str, list], n: int = 300) -> dict[str, list]:
    if not t:
        return {"t_s": [], **{k: [] for k in series}}
    step = max(1, math.ceil(len(t) / n))
    out = {"t_s": [float(x) for x in t[::step]]}
    for k, v in series.items():
        out[k] = [None if x is None else float(x) for x in v[::step]]
    return out


def _run_utilization(run: Run) -> dict[str, Any]:
    u = run.ok("utilization_patterns")
    if u is None:
        rec = run.records.get("utilization_patterns")
        return {"available": False, "reason": (rec.reason if rec else None) or "no utilization record"}
    d = u.data
    mon = d.get("monitor") or {}
    if not mon:
        return {"available": False, "reason": d.get("reason") or "samplers were not running",
                "per_stage": d.get("per_stage") or {}}
    t0 = d.get("t0") or 0.0
    cpu = (mon.get("cpu") or {}).get("samples") or []
    gpu = ((mon.get("gpu") or {}) or {}).get("samples") or []
    out: dict[str, Any] = {
        "available": True, "hz": mon.get("hz"),
        "cpu_total_pct": _stats([s.get("cpu_total_pct") for s in cpu]),
        "process_rss_mib": _stats([s.get("process_rss_mib") for s in cpu]),
        "gpu_util_pct": _stats([s.get("gpu_util_pct") for s in gpu]),
        "gpu_memory_used_mib": _stats([s.get("memory_used_mib") for s in gpu]),
        "gpu_power_w": _stats([s.get("power_w") for s in gpu]),
        "unavailable": dict(mon.get("unavailable") or {}),
        "sensor_errors": {**((mon.get("cpu") or {}).get("errors") or {}),
                          **(((mon.get("gpu") or {}) or {}).get("errors") or {})},
        "sampler_overhead": {"cpu": (mon.get("cpu") or {}).get("overhead"),
                             "gpu": ((mon.get("gpu") or {}) or {}).get("overhead")},
        "per_stage": d.get("per_stage") or {},
        "timeline": {
            "cpu": _downsample([s["t"] - t0 for s in cpu], {"cpu_total_pct": [s.get("cpu_total_pct") for s in cpu]}),
            "gpu": _downsample([s["t"] - t0 for s in gpu], {"gpu_util_pct": [s.get("gpu_util_pct") for s in gpu],
                                                            "power_w": [s.get("power_w") for s in gpu]}) if gpu
            else None,
            "sections": [{"name": s["name"], "start_s": s["start"] - t0, "end_s": s["end"] - t0}
                         for s in d.get("sections") or []],
        },
    }
    return out


def utilization(inputs: Inputs) -> dict[str, Any]:
    g, c = inputs.gpu, inputs.cpu
    out: dict[str, Any] = {"gpu_run": _run_utilization(g), "cpu_run": _run_utilization(c)}
    gw, cw = g.ok("winning_solution"), c.ok("winning_solution")
    rungs = []
    if gw:
        c_by = {rung_id(r, i): r for i, r in enumerate(cw.data["rungs"] if cw else [])}
        for i, r in enumerate(gw.data["rungs"]):
            cr = c_by.get(rung_id(r, i))
            rungs.append({"id": rung_id(r, i), "name": r["name"],
                          "gpu_label": r.get("label"), "cpu_label": cr.get("label") if cr else None,
                          "gpu_util_pct": r.get("gpu_util_pct"), "gpu_power_w": r.get("gpu_power_w"),
                          "gpu_run_cpu_util_pct": r.get("cpu_util_pct"),
                          "cpu_run_cpu_util_pct": cr.get("cpu_util_pct") if cr else None})
        ids = {rung_id(r, i) for i, r in enumerate(gw.data["rungs"])}
        for i, r in enumerate(cw.data["rungs"] if cw else []):
            if rung_id(r, i) not in ids:
                rungs.append({"id": rung_id(r, i), "name": r["name"],
                              "gpu_label": None, "cpu_label": r.get("label"), "gpu_util_pct": None,
                              "gpu_power_w": None, "gpu_run_cpu_util_pct": None,
                              "cpu_run_cpu_util_pct": r.get("cpu_util_pct")})
    out["rungs"] = rungs
    verdicts = []
    recipe = next((r for r in rungs if r["gpu_util_pct"] is not None), None)
    if recipe:
        verdicts.append(f"During the training ladder the GPU was busy {recipe['gpu_util_pct']:.0f}% of the time on "
                        f"'{recipe['name']}'" + "".join(
                            f", {r['gpu_util_pct']:.0f}% on '{r['name']}'" for r in rungs[1:]
                            if r["gpu_util_pct"] is not None) + " (NVML utilization, mean over the timed windows).")
    gu = out["gpu_run"].get("gpu_util_pct") if out["gpu_run"].get("available") else None
    if gu:
        verdicts.append(f"Over the whole GPU run the GPU was busy {gu['mean']:.0f}% of the time on average "
                        f"(max {gu['max']:.0f}%).")
    for label, run in (("GPU run's host", out["gpu_run"]), ("CPU run's", out["cpu_run"])):
        cu = run.get("cpu_total_pct") if run.get("available") else None
        if cu:
            verdicts.append(f"The {label} CPUs averaged {cu['mean']:.0f}% busy over the run (max {cu['max']:.0f}%).")
    out["verdicts"] = verdicts
    return out
