"""Speedup entries: one ratio of the two runs' raw values (``common.measure.stats.ratio``, median
ratio with a 95% bootstrap interval), with its kind, both configurations, the settings in which
they differ and where in which file its values come from. Each section's comparison part
(``common/sections/<name>/compare.py``, the convention of ``common.sections``) adds its entries;
every entry's ``id`` is built from keys the records declare, never from display text."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from common.comparison.load import Inputs, Run
from common.comparison.text import levers_diff
from common.measure.stats import Summary, ratio


def _get(obj: Any, path: list) -> Any:
    for p in path:
        obj = obj[p]
    return obj


@dataclass
class Side:
    """Where one side's values come from: a record of a run, paths inside it (summed elementwise)
    and a scale (e.g. 1e3 / batch size for milliseconds per image)."""

    run: Run
    kind: str
    paths: list[list]
    config: str
    levers: dict | None = None
    scale: float = 1.0
    unit: str = ""

    def values(self) -> list[float]:
        root = {"data": self.run.records[self.kind].data}
        total = None
        for path in self.paths:
            v = _get(root, path)
            arr = np.atleast_1d(np.asarray(v, dtype=np.float64))
            total = arr if total is None else total + arr
        return (total * self.scale).tolist()

    def describe(self, values: list[float]) -> dict[str, Any]:
        s = Summary.from_values(values, self.unit)
        return {"config": self.config, "levers": self.levers, "file": self.run.file(self.kind),
                "paths": self.paths, "scale": self.scale, "unit": self.unit, "median": s.median,
                "ci95": list(s.ci95), "n": s.n}


def short_label(eid: str, metric: str) -> str:
    """A figure label of a speedup entry (its metric is the full description)."""
    p = eid.split(".")
    tail = metric.split(": ")[-1]
    head = metric.split(",")[0]
    cfg = {"tutorial_recipe": "recipe", "device_resident": "device-resident"}.get(p[1], p[1])
    if p[0] == "training":
        if p[1] == "winner":
            return "training e2e: each device's winner"
        return f"training {'e2e' if p[-1] == 'end_to_end' else 'model-only'}: {tail}"
    if p[0] == "pipeline":
        what = {"end_to_end": "e2e throughput", "model_only": "model-only throughput", "step_time": "step time/image",
                "model_stages": "model stages", "data_stages": "data stages"}.get(p[2], p[-1])
        return f"{cfg}: {what}"
    if p[0] == "performance":
        return f"training, {'batch ' + p[2] if p[1] == 'batch_sweep' else tail.rstrip(')')}"
    if p[0] == "inference":
        if p[1] == "latency_batch1":
            return f"latency b1, {'best precision each' if p[2] == 'best' else p[2]}"
        return "inference, best batch each" if p[2] == "best_batch" else f"inference, batch {p[2][6:]}"
    if p[0] == "augmentation":
        way = {"device_batched": "batched", "cpu_per_sample": "MONAI, host CPUs"}.get(p[1])
        if p[1] == "chain":
            return "augmentation chain, best way each"
        return f"{'augmentation chain' if p[2] == 'chain' else head} ({way})"
    if p[0] == "volume3d":
        if p[1] == "augmentation":
            return f"{head} ({'batched' if p[2].startswith('device') else 'MONAI, host CPUs'})"
        return {"unet_train_step": "3D UNet train step", "sliding_window": "3D sliding window"}.get(
            p[1], f"3D UNet {p[-1]}")
    return metric


def speedup_entry(eid: str, group: str, metric: str, kind: str, gpu: Side, cpu: Side, higher_is_better: bool,
                  headline: bool = False, note: str | None = None, skipped: list | None = None) -> dict | None:
    """One speedup: > 1 means the GPU is better. Throughputs: ratio(gpu, cpu); times: ratio(cpu, gpu)."""
    try:
        gv, cv = gpu.values(), cpu.values()
        num, den = (gv, cv) if higher_is_better else (cv, gv)
        if not num or not den or any(not math.isfinite(x) for x in num + den):
            raise ValueError("no finite values")
        r = ratio(num, den)
        sides = {"gpu": gpu.describe(gv), "cpu": cpu.describe(cv)}
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        if skipped is not None:
            skipped.append({"id": eid, "metric": metric, "reason": str(exc) or type(exc).__name__})
        return None
    entry = {
        "id": eid, "group": group, "metric": metric, "short": short_label(eid, metric), "kind": kind,
        "speedup": r.value, "ci95": list(r.ci95), "interval_kind": r.interval_kind,
        "unit": "x", "numerator": "gpu" if higher_is_better else "cpu",
        "quantity": "higher is better" if higher_is_better else "lower is better",
        "gpu": sides["gpu"], "cpu": sides["cpu"], "differences": levers_diff(gpu.levers, cpu.levers),
        "headline": headline, "note": note,
    }
    if min(sides["gpu"]["n"], sides["cpu"]["n"]) < 2:
        entry["note"] = ((note + "; ") if note else "") + "one measurement on a side: its interval is degenerate"
    lo, hi = r.ci95
    entry["verdict"] = "gpu" if lo > 1 else "cpu" if hi < 1 else "no clear difference"
    return entry


def section_reason(inputs: Inputs, kind: str) -> str | None:
    """Why a section cannot be compared (a run's record missing or not ok), or None."""
    out = []
    for label, run in (("GPU run", inputs.gpu), ("CPU run", inputs.cpu)):
        rec = run.records.get(kind)
        if rec is None:
            out.append(f"{label}: no {kind} record")
        elif rec.status != "ok":
            why = f" ({rec.reason})" if rec.reason else ""
            out.append(f"{label}: {run.file(kind)} has status {rec.status}{why}")
    return "; ".join(out) or None


def key_id(key: object) -> str:
    """The id part of a key a record declares (a transform's name, a data field): lower case,
    runs of other characters as '_'. Never applied to display text (labels, rung names)."""
    return re.sub(r"[^a-z0-9]+", "_", str(key).lower()).strip("_")


# the training ladder's entries, which the efficiency, utilization and verdict parts name as well
RECIPE = "recipe"  # the ladder's first rung is the MONAI tutorial recipe
RECIPE_ID = f"training.ladder.{RECIPE}.end_to_end"
WINNER_ID = "training.winner.end_to_end"


def rung_id(rung: dict, index: int) -> str:
    """The stable id a rung record declares (``id``); the first rung is the recipe. Records written
    before rungs carried ids fall back to their name as a key, so old trees still compare."""
    if rung.get("id"):
        return key_id(rung["id"])
    return RECIPE if index == 0 else key_id(rung["name"])


def all_speedups(inputs: Inputs) -> tuple[list[dict], list[dict]]:
    """Every section's speedup entries (the compare part of each section in common.layout.SECTIONS
    that has one), and the ones that could not be computed with their reasons."""
    from common.layout import presented

    out: list[dict] = []
    skipped: list[dict] = []
    for sec in presented():
        if part := sec.entry("compare"):
            part(inputs.gpu, inputs.cpu, out, skipped)
    return out, skipped
