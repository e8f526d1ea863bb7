"""utilization_patterns/: the samplers' time series over the whole run, with the spans of
sections and stages, and per-stage utilization statistics."""

from __future__ import annotations

from typing import Any

import numpy as np

from common.analysis.context import Context

NAME = "utilization_patterns"
STAGE_NAMES = ("io_decode", "preprocess", "augment", "collate", "data_wait", "h2d", "forward", "backward",
               "optimizer", "sample", "unet_step")


def per_stage_stats(samples: list[dict], spans: list[dict], key: str) -> dict[str, Any]:
    """Mean and max of ``key`` over the samples that fall inside each stage's spans."""
    out = {}
    if not samples:
        return out
    t = np.array([s["t"] for s in samples])
    v = np.array([s.get(key) if s.get(key) is not None else np.nan for s in samples], dtype=float)
    for name in STAGE_NAMES:
        mask = np.zeros(len(t), dtype=bool)
        for sp in spans:
            if sp["name"] == name:
                mask |= (t >= sp["start"]) & (t <= sp["end"])
        vals = v[mask & np.isfinite(v)]
        if len(vals):
            out[name] = {"mean": float(vals.mean()), "max": float(vals.max()), "samples": int(len(vals))}
    return out


def measure(ctx: Context) -> dict[str, Any]:
    mon = ctx.monitor
    if mon is None:
        return {"monitor": None, "reason": "samplers were not running"}
    t0 = mon.cpu.started_at or 0.0
    spans = [s.to_dict() for s in ctx.timeline]
    sections = [sp for sp in ctx.cache.section_spans]
    rec = mon.to_dict()
    cpu_samples = rec["cpu"]["samples"]
    gpu_samples = rec["gpu"]["samples"] if rec["gpu"] else []
    stats = {"cpu_total_pct": per_stage_stats(cpu_samples, spans, "cpu_total_pct")}
    if gpu_samples:
        stats["gpu_util_pct"] = per_stage_stats(gpu_samples, spans, "gpu_util_pct")
        stats["power_w"] = per_stage_stats(gpu_samples, spans, "power_w")
    # keep the stage spans that the figures shade; drop nested sub-step detail beyond depth 1
    keep = [s for s in spans if s["depth"] <= 1]
    return {"t0": t0, "monitor": rec, "sections": sections, "spans": keep, "spans_total": len(spans),
            "per_stage": stats}
