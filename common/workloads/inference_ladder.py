"""The inference ladder: serving MedNIST's DenseNet121 at its best on this device, one lever per
rung from eager fp32. Each rung tries its lever on the fastest configuration so far and is kept
where its predictions agree with eager fp32 and its batch-1 median latency is lower. Measured per
rung: top-1 agreement and max |logit difference| against eager fp32 on the test split, batch-1
latency percentiles, one-time cost (compile / export / capture), the throughput-latency curve
over batch sizes; then the latency winner, the throughput winner under the latency budget, and
end-to-end latency from a JPEG on disk beside model-only latency (common/workloads/serving.py)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from common.measure.stats import Summary
from common.measure.timing import clock, cuda_sync
from common.workloads.inference_engines import RungSkipped, ServeLevers, build_predictor, cpu_threads
from common.workloads.serving import end_to_end, served_model, split_images

AGREEMENT_BATCH = 64  # test images per call of the agreement check (the last call is padded)
BATCH1_CHECK_IMAGES = 16  # test images also checked one at a time (the served batch-1 path)
PROBE_CALLS = 40  # batch-1 calls per candidate of a probe rung (thread count)


@dataclass(frozen=True)
class LadderConfig:
    latency_calls: int  # timed batch-1 calls per rung (p50/p95/p99)
    batch_sizes: tuple[int, ...]  # throughput-latency curve
    curve_seconds: float  # timed seconds per point of the curve (at least MIN_CURVE_CALLS calls)
    budget_ms: float  # latency budget: p99 of one batch call
    min_agreement: float  # top-1 agreement with eager fp32 a rung needs to win
    max_autotune: bool = False  # GPU: add the max-autotune-no-cudagraphs compile rung (compiles for minutes)
    compile: bool = True  # the torch.compile rungs
    min_curve_calls: int = 5

    @classmethod
    def from_settings(cls, s) -> "LadderConfig":
        return cls(s.inference_latency_calls, tuple(s.inference_batch_sizes), s.inference_curve_seconds,
                   s.latency_budget_ms, s.inference_min_agreement, s.inference_max_autotune, s.inference_compile)


@dataclass
class ServeRung:
    name: str
    lever: str  # what this rung changes against the fastest configuration so far
    change: Callable[[ServeLevers], ServeLevers]
    predicted: str = ""
    candidates: Callable[[ServeLevers], list[ServeLevers]] | None = None  # a probe: the fastest candidate is used


def thread_candidates(cur: ServeLevers) -> list[ServeLevers]:
    from common.analysis.settings import default_threads, logical_cpus

    physical = default_threads()
    return [cur.replace(cpu_threads=n) for n in sorted({1, max(1, physical // 2), physical, logical_cpus()})]


def gpu_rungs(max_autotune: bool) -> tuple[list[ServeRung], list[str]]:
    r = [
        ServeRung("inference_mode", "torch.inference_mode instead of no_grad", lambda c: c.replace(
            grad_mode="inference_mode"), "a few % less Python per op; batch 1 stays launch-bound"),
        ServeRung("channels_last", "NHWC weights and input", lambda c: c.replace(channels_last=True),
                  "no gain at batch 1 in eager (launch-bound); more launches for layout changes"),
        ServeRung("bf16 autocast", "autocast to bf16", lambda c: c.replace(precision="bf16_autocast"),
                  "slower at batch 1 in eager: autocast adds cast kernels to a launch-bound forward"),
        ServeRung("bf16 model cast", "model and input cast to bf16 (no autocast)",
                  lambda c: c.replace(precision="bf16_cast"), "no cast kernels; still launch-bound"),
        ServeRung("CUDA graph", "forward captured in a CUDA graph per batch size",
                  lambda c: c.replace(graph="cuda_graph"), "~600 launches become one: 10-14 ms -> 1.6-1.8 ms"),
        ServeRung("CUDA graph + bf16 + channels_last", "bf16 model cast and NHWC under the graph",
                  lambda c: c.replace(graph="cuda_graph", precision="bf16_cast", channels_last=True),
                  "with launches gone, kernel time counts: bf16 NHWC convolutions are faster"),
        ServeRung("torch.compile + CUDA graph", "inductor-compiled forward captured by the suite",
                  lambda c: c.replace(graph="compile_cuda_graph"),
                  "BN+ReLU fused into fewer kernels: below 1.5 ms at batch 1"),
    ]
    notes = []
    if max_autotune:
        r.append(ServeRung("torch.compile max-autotune + CUDA graph", "compile mode max-autotune-no-cudagraphs",
                           lambda c: c.replace(graph="compile_cuda_graph", compile_mode="max-autotune-no-cudagraphs"),
                           "tuned convolution templates; minutes of autotuning per batch size"))
    else:
        notes.append("max-autotune-no-cudagraphs rung left out (INFERENCE_MAX_AUTOTUNE = False: it autotunes every "
                     "convolution for every batch size, minutes each)")
    r.append(ServeRung("torch.compile reduce-overhead", "inductor's own CUDA graphs (mode reduce-overhead)",
                       lambda c: c.replace(graph="compile_reduce_overhead", compile_mode=None),
                       "about the suite's capture of the compiled forward"))
    notes.append("ONNX Runtime / OpenVINO rungs are CPU rungs (the onnxruntime package serves on the CPU)")
    return r, notes


def cpu_rungs() -> tuple[list[ServeRung], list[str]]:
    r = [
        ServeRung("inference_mode", "torch.inference_mode instead of no_grad", lambda c: c.replace(
            grad_mode="inference_mode"), "a few % less Python per op"),
        ServeRung("channels_last", "NHWC weights and input", lambda c: c.replace(channels_last=True),
                  "oneDNN's blocked NHWC convolutions: 10-30% at batch 1"),
        ServeRung("threads", "intra-op threads: the fastest of 1, half, all physical, all logical cores",
                  lambda c: c, "at batch 1 a 64x64 image gives threads little to share",
                  candidates=thread_candidates),
        ServeRung("bf16 autocast (oneDNN)", "autocast to bf16 where the CPU has avx512_bf16 / AMX",
                  lambda c: c.replace(precision="bf16_autocast"), "native bf16 dot products; casts cost at batch 1"),
        ServeRung("bf16 model cast (oneDNN)", "model and input in bf16", lambda c: c.replace(precision="bf16_cast"),
                  "no casts; bf16 oneDNN kernels"),
        ServeRung("torch.compile (inductor, freezing)", "inductor C++/oneDNN code, BN folded, weights prepacked",
                  lambda c: c.replace(graph="compile", freezing=True),
                  "~600 Python-dispatched ops become a few fused kernels: 1.5-3x at batch 1"),
        ServeRung("ONNX Runtime", "exported with torch.onnx, ONNX Runtime CPU execution provider (fp32)",
                  lambda c: ServeLevers(engine="onnxruntime", cpu_threads=c.cpu_threads),
                  "graph-optimised fused Conv+BN+ReLU kernels without Python per op: 2-3x at batch 1"),
    ]
    notes = ["OpenVINO not tried: ONNX Runtime already removes the per-op framework cost on this CPU, and "
             "OpenVINO would add a ~100 MB dependency for the same fused-graph idea"]
    return r, notes


def rungs_for(device: torch.device, cfg: LadderConfig) -> tuple[list[ServeRung], list[str]]:
    rungs, notes = gpu_rungs(cfg.max_autotune) if device.type == "cuda" else cpu_rungs()
    if not cfg.compile:
        rungs = [r for r in rungs if not r.name.startswith("torch.compile")]
        notes.append("torch.compile rungs left out (INFERENCE_COMPILE = False)")
    return rungs, notes


# --- measurements ------------------------------------------------------------------------------


def call_latencies(predictor, x: torch.Tensor, calls: int, device: torch.device, warmup: int = 5,
                   min_seconds: float = 0.0) -> list[float]:
    """Milliseconds per call, each call synchronized at both edges (what a waiting caller sees)."""
    times: list[float] = []
    t_start = None
    i = 0
    while True:
        cuda_sync(device)
        a = clock()
        out = predictor(x)
        cuda_sync(device)
        b = clock()
        del out
        if i >= warmup:
            times.append((b - a) * 1e3)
            t_start = a if t_start is None else t_start
            if len(times) >= calls and b - t_start >= min_seconds:
                return times
        i += 1


def e2e_calls(cfg: LadderConfig) -> int:
    """End-to-end requests per rung: a quarter of the model-only calls (at least 20)."""
    return max(20, cfg.latency_calls // 4)


def latency_record(times_ms: Sequence[float]) -> dict[str, Any]:
    s = Summary.from_values(times_ms, "ms")
    return {"summary": s.to_dict(), "p50_ms": s.median, "p95_ms": s.p95, "p99_ms": s.p99,
            "p999_ms": float(np.percentile(times_ms, 99.9)), "calls": s.n}


def _logits_all(predictor, images: torch.Tensor, batch: int, device: torch.device) -> torch.Tensor:
    outs = []
    for i in range(0, len(images), batch):
        x = images[i:i + batch]
        n = len(x)
        if n < batch:  # fixed-shape engines (CUDA graphs, static compiled shapes) get a padded batch
            x = torch.cat([x, x.new_zeros(batch - n, *x.shape[1:])])
        outs.append(predictor(x.to(device)).float().cpu()[:n])
    return torch.cat(outs)


def agreement(ref_logits: torch.Tensor, logits: torch.Tensor) -> dict[str, Any]:
    """Top-1 agreement fraction and max |logit difference| of ``logits`` against ``ref_logits``."""
    same = (ref_logits.argmax(1) == logits.argmax(1)).float()
    return {"top1_agreement": float(same.mean()), "disagreements": int((1 - same).sum()),
            "max_abs_logit_diff": float((ref_logits - logits).abs().max()), "n": int(len(same))}


def agreement_batch(cfg: LadderConfig) -> int:
    """The agreement check's batch: the largest curve batch size up to AGREEMENT_BATCH (a shape the
    fixed-shape engines prepare anyway), else AGREEMENT_BATCH."""
    return max((b for b in cfg.batch_sizes if b <= AGREEMENT_BATCH), default=AGREEMENT_BATCH)


def check_agreement(predictor, images: torch.Tensor, ref: dict[str, torch.Tensor], device: torch.device,
                    min_agreement: float, batch: int) -> dict[str, Any]:
    """Against eager fp32 on the test images, at ``batch`` and at batch 1 on a few images."""
    out = agreement(ref["batched"], _logits_all(predictor, images, batch, device))
    b1 = agreement(ref["batch1"], _logits_all(predictor, images[:BATCH1_CHECK_IMAGES], 1, device))
    out["batch1"] = b1
    worst = min(out["top1_agreement"], b1["top1_agreement"])
    out["passed"] = worst >= min_agreement
    out["min_agreement"] = min_agreement
    return out


def throughput_curve(predictor, images: torch.Tensor, cfg: LadderConfig, device: torch.device,
                     setup: dict[str, float]) -> list[dict[str, Any]]:
    """Per batch size: per-call latency (ms) and images/s = batch / median call; an out-of-memory
    batch is recorded as such."""
    rows = []
    for b in cfg.batch_sizes:
        try:
            setup[str(b)] = setup.get(str(b)) or predictor.prepare(b)
            idx = torch.arange(b) % len(images)
            x = images[idx].to(device)
            times = call_latencies(predictor, x, cfg.min_curve_calls, device, warmup=2,
                                   min_seconds=cfg.curve_seconds)
            lat = Summary.from_values(times, "ms")
            rates = [b / t * 1e3 for t in times]
            rows.append({"batch_size": b, "latency_ms": lat.to_dict(), "p50_ms": lat.median, "p99_ms": lat.p99,
                         "images_per_s": Summary.from_values(rates, "img/s").to_dict(),
                         "images_per_s_median": b / lat.median * 1e3, "error": None})
        except torch.OutOfMemoryError as exc:
            rows.append({"batch_size": b, "error": f"out of memory: {str(exc).splitlines()[0]}"})
            torch.cuda.empty_cache()
    return rows


def best_under_budget(rows: Sequence[dict], budget_ms: float) -> dict[str, Any] | None:
    """The fastest point (images/s) whose p99 call latency is within the budget, or None."""
    ok = [r for r in rows if not r.get("error") and r["p99_ms"] <= budget_ms]
    return max(ok, key=lambda r: r["images_per_s_median"]) if ok else None


# --- the ladder -------------------------------------------------------------------------------------


@dataclass
class LadderInputs:
    model: torch.nn.Module  # the served model (eval mode), fp32
    images: torch.Tensor  # test images, float32 scaled (N, 1, 64, 64) on the CPU
    device: torch.device
    cfg: LadderConfig
    progress: Callable[[str], None] = field(default=lambda _m: None)
    jpeg_paths: Sequence[str] = ()  # test JPEGs for end-to-end latency (none: not measured)


def _reference(inp: LadderInputs) -> dict[str, torch.Tensor]:
    eager = build_predictor(inp.model, ServeLevers(), inp.device)
    return {"batched": _logits_all(eager, inp.images, agreement_batch(inp.cfg), inp.device),
            "batch1": _logits_all(eager, inp.images[:BATCH1_CHECK_IMAGES], 1, inp.device)}


def _probe(inp: LadderInputs, candidates: list[ServeLevers]) -> tuple[ServeLevers, list[dict]]:
    rows = []
    x = inp.images[:1].to(inp.device)
    for lv in candidates:
        with cpu_threads(lv.cpu_threads):
            p = build_predictor(inp.model, lv, inp.device)
            p.prepare(1)
            rows.append({"levers": lv.to_dict(), "label": lv.label(),
                         "p50_ms": float(np.median(call_latencies(p, x, PROBE_CALLS, inp.device)))})
    best = min(range(len(rows)), key=lambda i: rows[i]["p50_ms"])
    return candidates[best], rows


def measure_rung(inp: LadderInputs, name: str, levers: ServeLevers, ref: dict, curve: bool = True) -> dict[str, Any]:
    """One rung: build, agreement, batch-1 latency, curve. Skipped (with the reason) where it cannot run."""
    out: dict[str, Any] = {"name": name, "levers": levers.to_dict(), "label": levers.label(), "status": "ok"}
    with cpu_threads(levers.cpu_threads):
        try:
            t0 = clock()
            predictor = build_predictor(inp.model, levers, inp.device)
            out["build_s"] = clock() - t0
            setup = {"1": predictor.prepare(1)}
            ab = agreement_batch(inp.cfg)
            setup[str(ab)] = setup.get(str(ab)) or predictor.prepare(ab)
            out["agreement"] = check_agreement(predictor, inp.images, ref, inp.device, inp.cfg.min_agreement, ab)
            x = inp.images[:1].to(inp.device)
            out["latency"] = latency_record(call_latencies(predictor, x, inp.cfg.latency_calls, inp.device))
            if inp.jpeg_paths:

                out["end_to_end"] = end_to_end(predictor, inp.jpeg_paths, inp.device, e2e_calls(inp.cfg))
            out["curve"] = throughput_curve(predictor, inp.images, inp.cfg, inp.device, setup) if curve else []
            out["setup_s"] = setup  # per batch size: compilation / capture / warm-up
            out["one_time_s"] = out["build_s"] + sum(setup.values())
            out["engine_version"] = getattr(predictor, "version", torch.__version__)
        except RungSkipped as exc:
            return {**out, "status": "skipped", "reason": str(exc)}
        except (RuntimeError, torch.OutOfMemoryError) as exc:  # a failing engine is a result, not the run's end
            return {**out, "status": "failed", "reason": f"{type(exc).__name__}: {str(exc).splitlines()[0]}"}
        finally:
            if inp.device.type == "cuda":
                torch.cuda.empty_cache()
    return out


def run_ladder(inp: LadderInputs, rungs: list[ServeRung] | None = None, notes: list[str] | None = None,
               curves: bool = True, on_rung: Callable[[list[dict]], None] | None = None) -> dict[str, Any]:
    """Every rung, then the winners. ``rungs`` defaults to this device's ladder; ``on_rung`` gets
    the rungs measured so far after each (to save a partial record)."""
    if rungs is None:
        rungs, notes = rungs_for(inp.device, inp.cfg)
    ref = _reference(inp)
    base = ServeLevers()
    inp.progress("eager fp32")
    results = [measure_rung(inp, "eager fp32", base, ref, curves)]
    results[0].update(lever="baseline: PyTorch eager, fp32, no_grad", kept=results[0]["status"] == "ok")
    best = results[0]
    for rung in rungs:
        inp.progress(rung.name)
        levers, probe = rung.change(base), None
        if rung.candidates:
            levers, probe = _probe(inp, rung.candidates(levers))
        r = measure_rung(inp, rung.name, levers, ref, curves)
        r.update(lever=rung.lever, predicted=rung.predicted, builds_on=best["name"], probe=probe)
        r["kept"] = bool(r["status"] == "ok" and r["agreement"]["passed"]
                         and best["status"] == "ok" and r["latency"]["p50_ms"] < best["latency"]["p50_ms"])
        if r["kept"]:
            best, base = r, levers
        results.append(r)
        if on_rung:
            on_rung(results)
    return summarize(results, inp.cfg, list(notes or []))


def summarize(rungs: list[dict], cfg: LadderConfig, notes: list[str]) -> dict[str, Any]:
    """Winners and speedups from measured rungs; a rung whose predictions disagree cannot win."""
    ok = [r for r in rungs if r["status"] == "ok" and r["agreement"]["passed"]]
    base = rungs[0] if rungs and rungs[0]["status"] == "ok" else None
    lat_win = min(ok, key=lambda r: r["latency"]["p50_ms"]) if ok else None
    points = [(r, best_under_budget(r["curve"], cfg.budget_ms)) for r in ok]
    points = [(r, p) for r, p in points if p]
    thr = max(points, key=lambda rp: rp[1]["images_per_s_median"]) if points else None
    for r in rungs:
        if r["status"] == "ok" and base:
            r["speedup_p50_vs_eager"] = base["latency"]["p50_ms"] / r["latency"]["p50_ms"]
            saved = base["latency"]["p50_ms"] - r["latency"]["p50_ms"]
            r["break_even_requests"] = r["one_time_s"] * 1e3 / saved if saved > 0 else None
    out = {"config": cfg.__dict__ | {"batch_sizes": list(cfg.batch_sizes)}, "rungs": rungs, "notes": notes,
           "budget_rule": f"best images/s among batch sizes whose p99 call latency <= {cfg.budget_ms:g} ms, over "
                          f"rungs whose top-1 agreement with eager fp32 >= {cfg.min_agreement:g}",
           "latency_winner": None, "throughput_winner": None}
    if lat_win:
        out["latency_winner"] = {"name": lat_win["name"], "label": lat_win["label"],
                                 "p50_ms": lat_win["latency"]["p50_ms"], "p99_ms": lat_win["latency"]["p99_ms"],
                                 "speedup_p50_vs_eager": lat_win.get("speedup_p50_vs_eager"),
                                 "engine": lat_win["levers"]["engine"]}
    else:
        out["latency_winner_reason"] = "no rung ran with predictions agreeing with eager fp32"
    if thr:
        r, p = thr
        out["throughput_winner"] = {"name": r["name"], "label": r["label"], "batch_size": p["batch_size"],
                                    "images_per_s": p["images_per_s_median"], "p99_ms": p["p99_ms"]}
    else:
        out["throughput_winner_reason"] = f"no measured batch size kept p99 within {cfg.budget_ms:g} ms"
    return out


def mednist_ladder(data, device: torch.device, s, progress: Callable[[str], None] = lambda _m: None
                   ) -> dict[str, Any]:
    """The inference ladder on MedNIST's test split with the settings ``s`` (Settings)."""

    progress("training the served model")
    model, info = served_model(data, device, s.inference_train_steps, s.seed, s.lr, s.base_batch)
    images, paths = split_images(data)
    inp = LadderInputs(model, images, device, LadderConfig.from_settings(s), progress, jpeg_paths=paths)
    out = run_ladder(inp)
    out["served_model"] = info
    out["test_images"] = int(len(images))
    return out
