"""performance_analysis/: batch-size sweep (throughput, step latency, peak memory),
precision comparison, memory and power efficiency, inference latency percentiles and
batch throughput, the inference ladder (serving at its best: common/workloads/inference_ladder.py);
on the CPU, thread scaling from 1 to all cores."""

from __future__ import annotations

from typing import Any

import torch

from common.analysis.context import Context
from common.measure.stats import Summary
from common.models import densenet121
from common.workloads import inference
from common.workloads.precision import fast_levers
from common.workloads.throughput import steady_throughput, timed_windows
from common.workloads.training import Trainer

NAME = "performance_analysis"


def _rss_growth(ctx: Context, windows, before_mib: float) -> float | None:
    samples = [x for x in ctx.monitor.cpu.snapshot() if any(a <= x["t"] <= b for a, b in windows)] \
        if ctx.monitor else []
    vals = [x["process_rss_mib"] for x in samples if x.get("process_rss_mib") is not None]
    return max(vals) - before_mib if vals else None


def _train_point(ctx: Context, levers, label: str) -> dict[str, Any]:
    s = ctx.settings
    dev = ctx.device
    import psutil

    rss0 = psutil.Process().memory_info().rss / 2**20
    if dev.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(dev)
    try:
        trainer = Trainer(ctx.data, levers, dev, lr=s.lr, base_batch=s.base_batch, seed=s.seed)
        res = steady_throughput(trainer, s.measure_steps, s.repeats, s.warmup_steps,
                                timer=ctx.timer(f"{NAME}:{label}", sync=False), energy=ctx.energy)
    except torch.OutOfMemoryError as exc:
        return {"label": label, "levers": levers.to_dict(), "batch_size": levers.batch_size,
                "error": f"out of memory: {str(exc).splitlines()[0]}"}
    rate = Summary.from_values(res["images_per_s"], "img/s").to_dict()
    step_ms = Summary.from_values([d / s.measure_steps * 1e3 for d in res["window_s"]], "ms").to_dict()
    if dev.type == "cuda":
        peak = torch.cuda.max_memory_allocated(dev) / 2**20
        mem_kind = "torch.cuda.max_memory_allocated"
    else:
        peak = _rss_growth(ctx, res["window_start_end"], rss0)
        mem_kind = "process RSS growth during the windows (psutil samples)"
    energy = res["energy"]
    j_img = energy.get("gpu_j_per_image") if dev.type == "cuda" else energy.get("cpu_j_per_image")
    del trainer
    return {
        "label": label, "levers": levers.to_dict(), "batch_size": levers.batch_size, "error": None,
        "images_per_s": rate, "step_latency_ms": step_ms,
        "peak_memory_mib": peak, "memory_kind": mem_kind,
        "images_per_gib": levers.batch_size / (peak / 1024) if peak and peak > 0 else None,
        "j_per_image": j_img,
        "images_per_j": 1.0 / j_img if j_img else None,
        "energy_reason": energy.get("gpu_energy_reason") if dev.type == "cuda" else energy.get("cpu_energy_reason"),
        "avg_power_w": energy.get("gpu_avg_power_w") if dev.type == "cuda" else None,
    }


def _inference_ladder(ctx: Context) -> dict[str, Any]:
    from common.workloads.inference_ladder import mednist_ladder

    bar = ctx.tqdm(1, "inference ladder")
    try:
        return mednist_ladder(ctx.data, ctx.device, ctx.settings,
                              lambda m: bar.set_description(f"inference ladder: {m}"))
    finally:
        bar.close()


def measure(ctx: Context) -> dict[str, Any]:
    s = ctx.settings
    dev = ctx.device
    base = fast_levers(ctx.device, s.batch_size)
    out: dict[str, Any] = {"base_levers": base.to_dict()}
    bar = ctx.tqdm(len(s.batch_sizes), "batch-size sweep")
    sweep = []
    for b in s.batch_sizes:
        sweep.append(_train_point(ctx, base.replace(batch_size=b), f"batch {b}"))
        bar.update(1)
    bar.close()
    out["batch_sweep"] = sweep
    precisions = [("fp32", False), ("fp32", True)]
    if dev.type == "cuda":
        precisions = [("fp32", False), ("bf16", True)] if s.quick else \
            precisions + [("bf16", False), ("bf16", True), ("fp16", True)]
    else:
        from common.workloads.ladder import bf16_ok

        ok, why = bf16_ok(dev)
        if ok:
            precisions += [("bf16", False), ("bf16", True)]
        else:
            out["bf16_reason"] = why
    out["precision"] = [_train_point(ctx, base.replace(precision=p, channels_last=cl),
                                     f"{p}{' channels_last' if cl else ''}") for p, cl in precisions]
    # inference
    model = densenet121().to(dev)
    if base.channels_last:
        model = model.to(memory_format=torch.channels_last)
    out["inference_latency"] = {
        prec: inference.latency(model, dev, prec, base.channels_last, calls=s.inference_repeats,
                                warmup=max(3, s.inference_repeats // 10))
        for prec in (["fp32", base.precision] if base.precision != "fp32" else ["fp32"])}
    inf_sizes = sorted(set(s.batch_sizes) | {1})
    out["inference_throughput"] = inference.batch_throughput(model, dev, inf_sizes, base.precision,
                                                             base.channels_last, iters=s.inference_throughput_iters,
                                                             repeats=s.repeats)
    ok_rows = [r for r in out["inference_throughput"] if r["images_per_s"]]
    out["inference_best_batch"] = max(ok_rows, key=lambda r: r["images_per_s"]["median"])["batch_size"] \
        if ok_rows else None
    out["inference_ladder"] = _inference_ladder(ctx)
    # thread scaling (CPU)
    if dev.type == "cpu":
        import psutil

        cores = psutil.cpu_count(logical=False) or 1
        counts = sorted({1, cores} | {c for c in (2, 4, 8, 16, 32, 64) if c < cores})
        prev = torch.get_num_threads()
        rows = []
        trainer = Trainer(ctx.data, base, dev, lr=s.lr, base_batch=s.base_batch, seed=s.seed)
        runner = trainer.model_only_runner()
        try:
            for t in counts:
                torch.set_num_threads(t)
                res = timed_windows(runner, s.measure_steps, s.repeats, 1, dev, name=f"threads {t}")
                rows.append({"threads": t,
                             "images_per_s": Summary.from_values(res["images_per_s"], "img/s").to_dict()})
        finally:
            torch.set_num_threads(prev)
        base_rate = rows[0]["images_per_s"]["median"]
        for r in rows:
            r["speedup_vs_1"] = r["images_per_s"]["median"] / base_rate
            r["parallel_efficiency"] = r["speedup_vs_1"] / r["threads"]
        out["thread_scaling"] = {"physical_cores": cores, "rows": rows, "workload": "model-only training step"}
    else:
        out["thread_scaling"] = None
        out["thread_scaling_reason"] = "thread scaling is measured in the CPU analysis"
    return out
