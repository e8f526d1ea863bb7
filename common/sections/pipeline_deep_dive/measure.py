"""pipeline_deep_dive/: where one training step's time goes, stage by stage, for the
tutorial recipe and the device-resident pipeline; the bottleneck; the data-stall fraction
(end-to-end throughput against the model-only ceiling); Amdahl bounds."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from common.analysis.context import Context
from common.analysis.interpret import interpret
from common.measure.stats import Summary
from common.workloads.levers import Levers
from common.workloads.precision import fast_levers
from common.workloads.throughput import model_only_throughput, steady_throughput
from common.workloads.training import DATA_STAGES, MODEL_STAGES, Trainer

NAME = "pipeline_deep_dive"


def stage_breakdown(trainer: Trainer, ctx: Context, steps: int, warmup: int) -> dict[str, Any]:
    timer = ctx.timer(f"{NAME}:{trainer.levers.label()}")
    with timer.warmup():
        trainer.staged_steps(max(1, warmup), timer)
    records = trainer.staged_steps(steps, timer)
    names = sorted({k for r in records for k in r.stages}, key=lambda k: (
        list(DATA_STAGES + MODEL_STAGES).index(k) if k in DATA_STAGES + MODEL_STAGES else 99))
    stages = {k: Summary.from_values([r.stages.get(k, 0.0) for r in records], "s").to_dict() for k in names}
    wall = Summary.from_values([r.wall_s for r in records], "s").to_dict()
    med = {k: v["median"] for k, v in stages.items()}
    total = sum(med.values())
    data_s = sum(v for k, v in med.items() if k in DATA_STAGES)
    model_s = sum(v for k, v in med.items() if k in MODEL_STAGES)
    worker = {}
    if records and records[0].worker_stage_cpu_s:
        keys = records[0].worker_stage_cpu_s.keys()
        worker = {k: float(np.median([r.worker_stage_cpu_s.get(k, 0.0) for r in records])) for k in keys}
    bottleneck = max(med, key=med.get) if med else None
    return {
        "levers": trainer.levers.to_dict(), "label": trainer.levers.label(),
        "steps": steps, "stages_s": stages, "step_wall_s": wall,
        "stage_sum_over_wall": total / wall["median"] if wall["median"] else None,
        "share": {k: v / total for k, v in med.items()} if total else {},
        "bottleneck": bottleneck,
        "data_s": data_s, "model_s": model_s,
        # Amdahl: the step's speedup if one side became free, the other unchanged
        "amdahl_if_data_free": total / model_s if model_s else None,
        "amdahl_if_model_free": total / data_s if data_s else None,
        "worker_cpu_s_per_batch": worker,
        "losses": [r.loss for r in records],
    }


def measure(ctx: Context) -> dict[str, Any]:
    s = ctx.settings
    configs = {
        "tutorial_recipe": Levers("tutorial", "fp32", False, s.batch_size, s.num_workers),
        "device_resident": fast_levers(ctx.device, s.batch_size),
    }
    out: dict[str, Any] = {"configs": {}}
    for key, levers in configs.items():
        trainer = Trainer(ctx.data, levers, ctx.device, lr=s.lr, base_batch=s.base_batch, seed=s.seed)
        res = stage_breakdown(trainer, ctx, s.measure_steps, s.warmup_steps)
        timer = ctx.timer(f"{NAME}:{key}", sync=False)
        e2e = steady_throughput(trainer, s.measure_steps, s.repeats, s.warmup_steps, timer=timer, energy=ctx.energy)
        ceil = model_only_throughput(trainer, s.measure_steps, s.repeats, s.warmup_steps, timer=timer,
                                     energy=ctx.energy)
        e2e_rate = Summary.from_values(e2e["images_per_s"], "img/s").to_dict()
        ceil_rate = Summary.from_values(ceil["images_per_s"], "img/s").to_dict()
        res["end_to_end_images_per_s"] = e2e_rate
        res["model_only_images_per_s"] = ceil_rate
        res["pipeline_efficiency"] = e2e_rate["median"] / ceil_rate["median"]
        res["data_stall_fraction"] = max(0.0, 1.0 - res["pipeline_efficiency"])
        res["energy"] = e2e["energy"]
        res["interpretation"] = interpret(res)
        out["configs"][key] = res
        del trainer
        if ctx.kind == "cuda":
            torch.cuda.empty_cache()
    out["note"] = ("stage times come from steps synchronized at every stage edge (so each stage's device work is "
                   "attributed to it); throughputs come from unsynchronized windows")
    return out
