"""pipeline_deep_dive/ of a custom pipeline: where its training step's time goes, stage by
stage (data_wait, h2d, forward with the loss, backward, optimizer), with its data as given and
held on the device; the data stall (end to end against the model-only ceiling) and Amdahl bounds.
The record has the shape of the built-in deep dive, so the same plotter draws it."""

from __future__ import annotations

from typing import Any

import torch

from common.analysis.context import Context
from common.analysis.interpret import interpret
from common.measure.stats import Summary
from common.workloads.custom import CustomLevers, CustomTrainer, split_batch, throughput, to_device
from common.workloads.training import DATA_STAGES, MODEL_STAGES

NAME = "pipeline_deep_dive"


def staged(trainer: CustomTrainer, ctx: Context, steps: int, warmup: int) -> dict[str, Any]:
    timer = ctx.timer(f"{NAME}:{trainer.levers.label()}")
    with timer.warmup():
        for i in range(max(1, warmup)):
            trainer.step(timer, step=-1 - i)
    walls, per_step = [], []
    for i in range(steps):
        with timer.window("step", step=i):
            trainer.step(timer, step=i)
    for i in range(steps):
        walls.append(next(s.duration for s in timer.spans if s.name == "step" and s.step == i))
    per = timer.per_step(list(DATA_STAGES + MODEL_STAGES))
    per_step = [per[i] for i in range(steps)]
    names = [k for k in DATA_STAGES + MODEL_STAGES if any(k in r for r in per_step)]
    stages = {k: Summary.from_values([r.get(k, 0.0) for r in per_step], "s").to_dict() for k in names}
    med = {k: v["median"] for k, v in stages.items()}
    total = sum(med.values())
    data_s = sum(v for k, v in med.items() if k in DATA_STAGES)
    model_s = sum(v for k, v in med.items() if k in MODEL_STAGES)
    wall = Summary.from_values(walls, "s").to_dict()
    return {"levers": trainer.levers.to_dict(), "label": trainer.levers.label(), "steps": steps,
            "stages_s": stages, "step_wall_s": wall, "stage_sum_over_wall": total / wall["median"],
            "share": {k: v / total for k, v in med.items()} if total else {},
            "bottleneck": max(med, key=med.get) if med else None, "data_s": data_s, "model_s": model_s,
            "amdahl_if_data_free": total / model_s if model_s else None,
            "amdahl_if_model_free": total / data_s if data_s else None,
            "worker_cpu_s_per_batch": {}, "losses": [trainer.last_loss]}


def measure_config(ctx: Context, levers: CustomLevers) -> dict[str, Any]:
    s, p = ctx.settings, ctx.cache.pipeline
    trainer = CustomTrainer(p, ctx.device, levers)
    res = staged(trainer, ctx, s.measure_steps, s.warmup_steps)
    timer = ctx.timer(f"{NAME}:{levers.label()}", sync=False)
    e2e = throughput(trainer.step, s.measure_steps, s.repeats, s.warmup_steps, ctx.device, ctx.energy, timer,
                     "end_to_end")
    x, y = (to_device(v, ctx.device, levers.channels_last) for v in split_batch(next(iter(trainer.loader))))
    ceil = throughput(lambda: trainer.model_only_step(x, y), s.measure_steps, s.repeats, 1, ctx.device, ctx.energy,
                      timer, "model_only")
    e2e_rate = Summary.from_values(e2e["images_per_s"], "img/s").to_dict()
    ceil_rate = Summary.from_values(ceil["images_per_s"], "img/s").to_dict()
    res.update(end_to_end_images_per_s=e2e_rate, model_only_images_per_s=ceil_rate,
               pipeline_efficiency=e2e_rate["median"] / ceil_rate["median"], energy=e2e["energy"])
    res["data_stall_fraction"] = max(0.0, 1.0 - res["pipeline_efficiency"])
    res["interpretation"] = interpret(res)
    ctx.cache.custom_configs[levers] = res  # the performance section's levers reuse it
    if ctx.kind == "cuda":
        torch.cuda.empty_cache()
    return res


def measure(ctx: Context) -> dict[str, Any]:
    p = ctx.cache.pipeline
    out: dict[str, Any] = {"pipeline": p.name, "stage_names": dict(p.stages), "configs": {}}
    out["configs"]["as_given"] = measure_config(ctx, CustomLevers())
    out["configs"]["device_resident"] = measure_config(ctx, CustomLevers(device_resident=True))
    out["note"] = ("stage times come from steps synchronized at every stage edge; throughputs from unsynchronized "
                   "windows. 'device_resident' holds the pipeline's first batches on the device and cycles them "
                   "(no loading, no copy)")
    return out
