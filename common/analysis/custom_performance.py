"""performance_analysis/ of a custom pipeline: training batch sweep (model-only steps on device
batches of the pipeline's own samples), inference latency percentiles at batch 1 and throughput
over batch sizes, and the levers one at a time (device-resident data, bf16, channels_last, a CUDA
graph of the inference forward). A part the pipeline or the device does not allow is recorded as
skipped with its reason."""

from __future__ import annotations

from typing import Any

import torch

from common.analysis.context import Context
from common.measure.stats import Summary
from common.pipeline_protocol import missing_for_training
from common.workloads.custom import (
    CustomLevers,
    CustomTrainer,
    channels_last_applies,
    example_input,
    inference_fn,
    memory_format,
    sample_pool,
    throughput,
)
from common.workloads.inference import batch_throughput, latency

NAME = "performance_analysis"


def _bf16_reason(device: torch.device) -> str | None:
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return "this GPU does not support bf16"
    return None


def batch_sweep(ctx: Context, sizes: list[int]) -> tuple[list[dict[str, Any]], int]:
    s, p = ctx.settings, ctx.cache.pipeline
    x_all, y_all, distinct = sample_pool(p, max(sizes))
    rows = []
    for b in sizes:
        try:
            trainer = CustomTrainer(p, ctx.device, CustomLevers())
            x, y = x_all[:b].to(ctx.device), (y_all[:b].to(ctx.device) if y_all is not None else None)
            if ctx.kind == "cuda":
                torch.cuda.reset_peak_memory_stats(ctx.device)
            step = (lambda t=trainer, x=x, y=y: t.model_only_step(x, y))
            r = throughput(step, s.measure_steps, s.repeats, 1, ctx.device,
                           ctx.energy, ctx.timer(f"{NAME}:batch_sweep", sync=False), f"batch_{b}")
            rate = Summary.from_values(r["images_per_s"], "img/s").to_dict()
            joules = [e.get("gpu_energy_j") if ctx.kind == "cuda" else e.get("cpu_energy_j") for e in r["energy"]]
            reason = next((e.get("gpu_energy_reason") if ctx.kind == "cuda" else e.get("cpu_energy_reason")
                           for e in r["energy"]), None)
            rows.append({"batch_size": b, "images_per_s": rate,
                         "step_latency_ms": Summary.from_values([b / v * 1e3 for v in r["images_per_s"]], "ms")
                         .to_dict(),
                         "peak_memory_mib": torch.cuda.max_memory_allocated(ctx.device) / 2**20
                         if ctx.kind == "cuda" else None,
                         "images_per_j": r["energy"][0]["images"] / joules[0] if joules and joules[0] else None,
                         "energy_reason": None if joules and joules[0] else reason, "error": None})
        except torch.OutOfMemoryError as exc:
            rows.append({"batch_size": b, "images_per_s": None, "error": f"out of memory: {str(exc).splitlines()[0]}"})
            torch.cuda.empty_cache()
    return rows, distinct


def cuda_graph_latency(ctx: Context, x1: torch.Tensor, calls: int) -> dict[str, Any]:
    """Batch-1 latency of the forward captured in a CUDA graph (replays synchronized)."""
    from common.measure.timing import clock

    p = ctx.cache.pipeline
    if ctx.kind != "cuda":
        return {"skipped": "CUDA graphs need a CUDA device"}
    if p.model is None:
        return {"skipped": "the pipeline gives an infer_fn, not a model: a CUDA graph needs the model"}
    import copy

    model = copy.deepcopy(p.model).to(ctx.device).eval()
    static = x1.clone()
    with torch.no_grad():
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(3):
                model(static)
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            model(static)
    times = []
    for _ in range(calls):
        torch.cuda.synchronize()
        a = clock()
        graph.replay()
        torch.cuda.synchronize()
        times.append((clock() - a) * 1e3)
    sm = Summary.from_values(times, "ms")
    return {"summary": sm.to_dict(), "p50_ms": sm.median, "p95_ms": sm.p95, "p99_ms": sm.p99, "calls": calls}


def lever_throughput(ctx: Context, lv: CustomLevers) -> dict[str, Any]:
    """End-to-end training samples/s of one lever setting (the deep dive's, where it measured it)."""
    done = ctx.cache.custom_configs.get(lv)
    if done is None:
        s = ctx.settings
        trainer = CustomTrainer(ctx.cache.pipeline, ctx.device, lv)
        r = throughput(trainer.step, s.measure_steps, s.repeats, max(1, s.warmup_steps), ctx.device, ctx.energy,
                       ctx.timer(f"{NAME}:{lv.label()}", sync=False), "end_to_end")
        done = {"end_to_end_images_per_s": Summary.from_values(r["images_per_s"], "img/s").to_dict(),
                "energy": r["energy"]}
    return {"label": lv.label(), "images_per_s": done["end_to_end_images_per_s"], "energy": done["energy"]}


def levers(ctx: Context, x1: torch.Tensor, calls: int) -> dict[str, Any]:
    p = ctx.cache.pipeline
    why_not_train = missing_for_training(p)
    out: dict[str, Any] = {"training": {}, "inference_batch1": {}}
    train_levers = {"as_given": CustomLevers(), "device_resident": CustomLevers(device_resident=True),
                    "bf16": CustomLevers(True, "bf16"), "channels_last": CustomLevers(True, "bf16", True)}
    for key, lv in train_levers.items():
        reason = why_not_train or (_bf16_reason(ctx.device) if lv.precision == "bf16" else None)
        if lv.channels_last and not channels_last_applies(x1):
            reason = f"channels_last needs 4-D or 5-D inputs (the pipeline's are {x1.dim()}-D)"
        if reason:
            out["training"][key] = {"label": lv.label(), "skipped": reason}
            continue
        out["training"][key] = lever_throughput(ctx, lv)
    for key, prec, cl in (("fp32", "fp32", False), ("bf16", "bf16", False), ("bf16_channels_last", "bf16", True)):
        reason = _bf16_reason(ctx.device) if prec == "bf16" else None
        if cl and (p.infer_fn is not None or not channels_last_applies(x1)):
            reason = "channels_last applies to a model with 4-D or 5-D inputs"
        if reason:
            out["inference_batch1"][key] = {"skipped": reason}
            continue
        fn = inference_fn(p, ctx.device, prec, cl, spatial_dims=x1.dim() - 2)
        out["inference_batch1"][key] = latency(fn, ctx.device, calls=calls, warmup=3,
                                               example=memory_format(x1.to(ctx.device), cl))
    try:
        out["inference_batch1"]["cuda_graph"] = cuda_graph_latency(ctx, x1.to(ctx.device), calls)
    except Exception as exc:  # a model that cannot be captured: say so, keep the rest
        out["inference_batch1"]["cuda_graph"] = {"skipped": f"capture failed: {type(exc).__name__}: {exc}"[:300]}
    return out


def measure(ctx: Context) -> dict[str, Any]:
    s, p = ctx.settings, ctx.cache.pipeline
    sizes = sorted(set(int(b) for b in (p.batch_sizes or s.batch_sizes)))
    x = example_input(p)
    x1 = x[:1]
    calls = s.inference_repeats
    out: dict[str, Any] = {"pipeline": p.name, "batch_sizes": sizes, "input_shape": list(x.shape)}
    why = missing_for_training(p)
    if why:
        out["batch_sweep"], out["batch_sweep_skipped"] = [], why
    else:
        out["batch_sweep"], out["distinct_samples"] = batch_sweep(ctx, sizes)
    out["inference_latency"] = latency(inference_fn(p, ctx.device), ctx.device, calls=calls, warmup=3,
                                       example=x1.to(ctx.device))
    pool = sample_pool(p, max(sizes))[0] if (p.dataset is not None or p.train_loader is not None) else None
    if pool is None:
        out["inference_throughput"], out["inference_throughput_skipped"] = [], "no data to build batches from"
    else:
        out["inference_throughput"] = batch_throughput(inference_fn(p, ctx.device), ctx.device, sizes, iters=2,
                                                       repeats=s.repeats,
                                                       make_input=lambda b: pool[:b].to(ctx.device))
    out["levers"] = levers(ctx, x1, calls)
    return out
