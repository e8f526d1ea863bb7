"""The optimization ladder: from the MONAI tutorial recipe, one lever at a time, each rung
trained to the accuracy gate and timed (end to end and model-only ceiling), with energy,
utilization and MFU. Shared by the winning_solution section and benchmarks/winning_solution.py."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

import config
from common.measure.stats import Summary, ratio
from common.measure.timing import clock, cuda_sync
from common.models import count_flops, densenet121
from common.workloads.levers import Levers
from common.workloads.training import (
    Trainer,
    peak_memory_mib,
    steady_throughput,
    timed_windows,
    train_to_accuracy,
)


@dataclass
class Rung:
    name: str
    levers: Levers
    lever: str  # what this rung changes against the previous one
    predicted: str = ""  # what we expected it to give, written before measuring
    # a probe rung: candidates built from the previous rung's levers; the fastest end to end
    # (short timed windows, no training) becomes this rung's levers and is then trained and timed
    candidates: Callable[[Levers], list[Levers]] | None = None


def thread_candidates(cur: Levers) -> list[Levers]:
    from common.analysis.settings import default_threads, logical_cpus

    physical = default_threads()
    counts = sorted({max(1, physical // 2), physical, logical_cpus()})
    return [cur.replace(cpu_threads=n) for n in counts]


def format_candidates(device: torch.device) -> Callable[[Levers], list[Levers]]:
    precisions = ["fp32"] + (["bf16"] if bf16_ok(device)[0] else [])
    return lambda cur: [cur.replace(precision=p, channels_last=cl) for p in precisions for cl in (False, True)]


def batch_candidates(cur: Levers) -> list[Levers]:
    b = cur.batch_size
    return [cur.replace(batch_size=n) for n in sorted({max(1, b // 4), max(1, b // 2), b, 2 * b})]


def bf16_ok(device: torch.device) -> tuple[bool, str | None]:
    if device.type == "cuda":
        return (True, None) if torch.cuda.is_bf16_supported() else (False, "GPU without bf16")
    cap = torch.backends.cpu.get_cpu_capability()
    flags = ""
    try:
        flags = open("/proc/cpuinfo").read()
    except OSError:
        pass
    if "avx512_bf16" in flags or "amx_bf16" in flags:
        return True, None
    return False, f"CPU has no native bf16 (capability {cap}; no avx512_bf16/amx_bf16 flag)"


def inductor_has(name: str) -> bool:
    """Whether this torch's inductor has the (dotted) option ``name``."""
    from torch._inductor import config as inductor_config

    obj: Any = inductor_config
    for part in name.split("."):
        if not hasattr(obj, part):
            return False
        obj = getattr(obj, part)
    return True


def tuning_rungs(cur: Levers, device: torch.device) -> tuple[list[Rung], list[str]]:
    """Inductor's own tuning, after the fused-blocks rung (``tuning=True``; not in the default
    ladder: each compiles the whole step again). Hopper's programmatic dependent launch lets a
    kernel start while the one before it drains (~2,000 kernels per step); coordinate-descent
    tuning then benchmarks block sizes and warps for every generated kernel instead of taking
    inductor's heuristics (the step is ~60% inductor pointwise/reduction kernels). It comes
    last: on an H200 its compilation ran past 10 minutes (docs/PERFORMANCE.md, run P)."""
    rungs: list[Rung] = []
    notes: list[str] = []
    opts = dict(cur.compile_options)
    major = torch.cuda.get_device_capability(device)[0] if device.type == "cuda" else 0
    if not inductor_has("triton.enable_pdl"):
        notes.append("programmatic-dependent-launch rung left out: this torch's inductor has no triton.enable_pdl")
    elif major < 9:
        notes.append(f"programmatic-dependent-launch rung left out: needs compute capability 9.0+, not {major}.x")
    else:
        opts["triton.enable_pdl"] = True
        cur = cur.replace(compile_options=tuple(sorted(opts.items())))
        rungs.append(Rung("programmatic dependent launch", cur, "inductor triton.enable_pdl=True",
                          "kernel tails overlap the next kernel's start: +2-5% (~2,000 kernels per step)"))
    if inductor_has("coordinate_descent_tuning"):
        opts["coordinate_descent_tuning"] = True
        cur = cur.replace(compile_options=tuple(sorted(opts.items())))
        rungs.append(Rung("coordinate-descent tuned kernels", cur, "inductor coordinate_descent_tuning=True",
                          "better block sizes for the memory-bound BN/ReLU kernels: +3-8%; over 10 min of compilation"))
    else:
        notes.append("coordinate-descent rung left out: this torch's inductor has no coordinate_descent_tuning")
    return rungs, notes


def default_rungs(device: torch.device, batch: int, workers: int, quick: bool, tuning: bool = False
                  ) -> tuple[list[Rung], list[str]]:
    """The ladder for this device. Returns (rungs, notes about rungs left out and why).
    ``tuning`` adds inductor's tuning rungs after the last GPU rung (``tuning_rungs``)."""
    notes: list[str] = []
    base = Levers("tutorial", "fp32", False, batch, workers)
    rungs = [Rung("MONAI tutorial recipe", base, "baseline: per-sample MONAI transforms in DataLoader workers, fp32",
                  "data loading bound on a GPU; compute bound on a CPU")]
    cur = base
    if not quick:
        cur = cur.replace(data_path="cached")
        rungs.append(Rung("cached decoded tensors", cur, "data_path=cached (no JPEG decode per step)",
                          "removes decode, but per-sample augmentation in workers stays"))
    cur = cur.replace(data_path="device_resident", num_workers=0)
    rungs.append(Rung("device-resident data, batched device augmentation", cur, "data_path=device_resident",
                      "removes the data stall: close to the model-only ceiling"))
    if device.type == "cpu" and not quick:  # the CPU's own levers, each the fastest of a short probe
        rungs.append(Rung("threads", cur, "cpu_threads: the fastest of half the physical cores, all physical "
                          "cores, all logical CPUs", "all physical cores; hyper-threads add little to convolutions",
                          candidates=thread_candidates))
        ok, why = bf16_ok(device)
        if not ok:
            notes.append(f"bf16 left out of the precision probe: {why}")
        rungs.append(Rung("precision x memory format", cur, "the fastest of fp32" + ("/bf16" if ok else "")
                          + " x NCHW/NHWC", "bf16 + channels_last where the CPU has AMX; fp32 channels_last without it",
                          candidates=format_candidates(device)))
        rungs.append(Rung("batch", cur, "the fastest of batch/4, batch/2, batch, 2 x batch",
                          "within 10% of each other: CPU convolutions are not launch-bound",
                          candidates=batch_candidates))
        return rungs, notes
    ok, why = bf16_ok(device)
    if ok:
        cur = cur.replace(precision="bf16")
        rungs.append(Rung("bf16 autocast", cur, "precision=bf16", "tensor cores: 1.5-2x on the GPU"))
    else:
        notes.append(f"bf16 rung left out: {why}")
    cur = cur.replace(channels_last=True)
    rungs.append(Rung("channels_last", cur, "channels_last=True", "cuDNN NHWC kernels: 1.1-1.3x with bf16"))
    if quick and len(rungs) > 3:  # quick mode: fewer rungs, bf16 and channels_last in one step
        merged = rungs.pop()
        rungs[-1] = Rung(f"{rungs[-1].name} + channels_last", merged.levers,
                         f"{rungs[-1].lever}, channels_last=True", rungs[-1].predicted)
    if device.type == "cuda":
        big = max(1024, batch)
        if not quick:
            cur = cur.replace(batch_size=big)
            rungs.append(Rung(f"batch {big}", cur, f"batch_size={big}", "fewer launches per image: 1.2-1.5x"))
            cur = cur.replace(graph="cuda_graph")
            rungs.append(Rung("CUDA graph (whole step captured)", cur, "graph=cuda_graph",
                              "removes launch overhead: 2-3x at batch 1024"))
            cur = cur.replace(batch_size=2 * big)
            rungs.append(Rung(f"batch {2 * big}", cur, f"batch_size={2 * big}",
                              "larger kernels: +10-20%; half the optimizer steps per epoch may cost accuracy"))
            cur = cur.replace(graph="compile_cuda_graph")
            rungs.append(Rung("torch.compile inside the captured step", cur, "graph=compile_cuda_graph",
                              "inductor fuses BN/ReLU/concat: 1.3-1.6x; compilation (~2 min here) counts in "
                              "time to accuracy"))
            cur = cur.replace(fused_optimizer=True)
            rungs.append(Rung("fused Adam (one kernel for all parameters)", cur, "fused_optimizer=True",
                              "Adam's ~80 kernels and ~700 small elementwise launches per step become ~15: +3-5%"))
            cur = cur.replace(concat_free=True)
            rungs.append(Rung("concat-free dense blocks (same network)", cur, "concat_free=True",
                              "each layer reads its block once instead of copying it and re-reading it for "
                              "statistics: -10-15% memory traffic, so J/image and time alike"))
            from common.fused_dense import triton_available

            ok, why = triton_available()
            if ok:
                cur = cur.replace(fused_blocks=True)
                rungs.append(Rung("BN + ReLU fused into the 1x1 convolutions", cur, "fused_blocks=True",
                                  "the normalised block and its gradient are never written: about half the "
                                  "dense layers' memory traffic, -20-30% step time and J/image"))
            else:
                notes.append(f"fused-blocks rung left out: {why}")
            if tuning:
                extra, why = tuning_rungs(cur, device)
                rungs += extra
                notes += why
        else:
            cur = cur.replace(batch_size=big, graph="cuda_graph")
            rungs.append(Rung(f"batch {big} + CUDA graph", cur, f"batch_size={big}, graph=cuda_graph",
                              "removes launch overhead"))
    return rungs, notes


def measure_matmul_peak(device: torch.device, dtype: torch.dtype, n: int | None = None, iters: int = 10
                        ) -> dict[str, Any]:
    """Measured matrix-product rate (FLOP/s) on random data: the ceiling MFU is taken against."""
    if n is None:
        n = 8192 if device.type == "cuda" else 1024
    g = torch.Generator(device="cpu").manual_seed(0)
    a = torch.randn(n, n, generator=g).to(device=device, dtype=dtype)
    b = torch.randn(n, n, generator=g).to(device=device, dtype=dtype)
    prev_tf32 = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        for _ in range(2):
            a @ b
        rates = []
        for _ in range(3):
            cuda_sync(device)
            t0 = clock()
            for _ in range(iters):
                a @ b
            cuda_sync(device)
            rates.append(2 * n**3 * iters / (clock() - t0))
    finally:
        torch.backends.cuda.matmul.allow_tf32 = prev_tf32
    return {"n": n, "dtype": str(dtype).replace("torch.", ""), "flops_per_s": float(np.median(rates)),
            "values": rates}


def train_flops_per_image(device: torch.device) -> int:
    m = densenet121().to(device)
    x = torch.rand(2, 1, 64, 64, device=device)
    return count_flops(m, x, backward=True) // 2


def calibrated_steps(run: Callable[[int], Any], device: torch.device, batch: int, min_steps: int,
                     min_window_s: float) -> int:
    """Steps per window so that a window lasts at least ``min_window_s`` (energy counters and
    clocks need windows well above their resolution)."""
    cuda_sync(device)
    t0 = clock()
    run(2)
    cuda_sync(device)
    per_step = max((clock() - t0) / 2, 1e-6)
    return max(min_steps, int(math.ceil(min_window_s / per_step)))


def probe(candidates: list[Levers], data, device: torch.device, *, lr: float, base_batch: int, seed: int,
          window_s: float, repeats: int = 2) -> tuple[Levers, list[dict[str, Any]]]:
    """End-to-end throughput of each candidate in short windows (untrained weights: speed
    does not depend on them); returns the fastest and every candidate's numbers."""
    rows = []
    for lv in candidates:
        trainer = Trainer(data, lv, device, lr=lr, base_batch=base_batch, seed=seed)
        n = calibrated_steps(trainer.run_steps, device, lv.batch_size, 1, window_s)
        w = timed_windows(trainer.run_steps, n, repeats, 0, device, name=f"probe {lv.label()}")
        rows.append({"levers": lv.to_dict(), "label": lv.label(),
                     "images_per_s": Summary.from_values(w["images_per_s"], "img/s").to_dict()})
        del trainer
    best = max(range(len(rows)), key=lambda i: rows[i]["images_per_s"]["median"])
    return candidates[best], rows


def _mean_in_windows(samples: list[dict], key: str, windows: list[tuple[float, float]]) -> float | None:
    vals = [s[key] for s in samples if s.get(key) is not None and any(a <= s["t"] <= b for a, b in windows)]
    return float(np.mean(vals)) if vals else None


def end_to_end_window(trainer: Trainer, accuracy: dict[str, Any], steps: int, warmup: int, min_window_s: float
                      ) -> tuple[int, int, dict[str, Any]]:
    """Steps per end-to-end window and warm-up steps for a trained rung, and why.

    A rung fed by DataLoader workers (the tutorial recipe) that are faster than the model
    cannot be timed in windows of a few steps: between windows the workers fill their
    prefetch queue (2 batches per worker), the next window drains it at model speed, and a
    window that crosses an epoch end waits for a fresh set of workers (the tutorial's
    DataLoader starts them every epoch). Such windows measure where they fall, not the recipe:
    in run M the recipe's windows spread over 4x. Its windows are therefore whole epochs, each
    starting at an epoch boundary (training has just ended on one), so that every window holds
    one worker start and one epoch of batches, as training does. Device-resident rungs have no
    queue to drain and keep short windows, and so does a rung whose epoch takes longer than
    ``config.LOADER_EPOCH_WINDOW_MAX_S``."""
    epoch_window_max_s = config.LOADER_EPOCH_WINDOW_MAX_S
    lv = trainer.levers

    def short(why: str) -> tuple[int, int, dict[str, Any]]:
        n = calibrated_steps(trainer.run_steps, trainer.device, lv.batch_size, steps, min_window_s)
        return n, warmup, {"kind": "steps", "steps": n, "reason": why}

    if lv.data_path == "device_resident" or lv.num_workers == 0:
        return short("no DataLoader workers: no prefetch queue between windows")
    per_epoch = trainer.steps_per_epoch()
    epoch_s = [h["train_s"] for h in accuracy.get("history", [])]
    typical = float(np.median(epoch_s)) if epoch_s else None
    if typical is None:
        return short("no trained epoch to size the windows by")
    if typical > epoch_window_max_s:
        return short(f"an epoch takes {typical:.1f} s here, more than {epoch_window_max_s:.0f} s")
    trainer.run_steps(trainer.steps_left_in_epoch())  # training ends on a boundary; this makes sure
    epochs_per_window = max(1, math.ceil(min_window_s / typical)) if typical > 0 else 1
    return per_epoch * epochs_per_window, 0, {
        "kind": "epochs", "epochs": epochs_per_window, "steps": per_epoch * epochs_per_window,
        "reason": "DataLoader workers: whole epochs from an epoch boundary (a worker start and a full epoch each)"}


def run_rung(rung: Rung, data, device: torch.device, *, lr: float, base_batch: int, seed: int, epochs: int,
             target: float, steps: int, repeats: int, warmup: int, min_window_s: float, energy=None, monitor=None,
             flops_per_image: int | None = None, peak_flops: float | None = None, progress=None) -> dict[str, Any]:
    """Train one rung to the accuracy gate, then time it end to end and model-only."""
    out: dict[str, Any] = {"name": rung.name, "lever": rung.lever, "predicted": rung.predicted,
                           "levers": rung.levers.to_dict(), "label": rung.levers.label()}
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    t0 = clock()
    trainer = Trainer(data, rung.levers, device, lr=lr, base_batch=base_batch, seed=seed)
    out["accuracy"] = train_to_accuracy(trainer, epochs, target, progress=progress)
    n, e2e_warmup, out["window"] = end_to_end_window(trainer, out["accuracy"], steps, warmup, min_window_s)
    e2e = steady_throughput(trainer, n, repeats, e2e_warmup, energy=energy)
    out["end_to_end"] = e2e
    out["steps_per_window"] = n
    runner = trainer.model_only_runner()
    n_model = calibrated_steps(runner, device, rung.levers.batch_size, steps, min_window_s)
    ceil = timed_windows(runner, n_model, repeats, warmup, device, energy=energy,
                         name=f"model-only {rung.levers.label()}")
    out["model_only"] = ceil
    out["images_per_s"] = Summary.from_values(e2e["images_per_s"], "img/s").to_dict()
    out["model_only_images_per_s"] = Summary.from_values(ceil["images_per_s"], "img/s").to_dict()
    out["pipeline_efficiency"] = out["images_per_s"]["median"] / out["model_only_images_per_s"]["median"]
    out["gpu_j_per_image"] = e2e["energy"].get("gpu_j_per_image")
    out["cpu_j_per_image"] = e2e["energy"].get("cpu_j_per_image")
    out["energy_reason"] = e2e["energy"].get("gpu_energy_reason") if device.type == "cuda" \
        else e2e["energy"].get("cpu_energy_reason")
    if monitor is not None:
        windows = e2e["window_start_end"]
        gpu = monitor.gpu.snapshot() if monitor.gpu else []
        cpu = monitor.cpu.snapshot()
        out["gpu_util_pct"] = _mean_in_windows(gpu, "gpu_util_pct", windows) if gpu else None
        out["gpu_power_w"] = _mean_in_windows(gpu, "power_w", windows) if gpu else None
        out["cpu_util_pct"] = _mean_in_windows(cpu, "cpu_total_pct", windows)
    if flops_per_image and peak_flops:
        out["achieved_tflops"] = out["images_per_s"]["median"] * flops_per_image / 1e12
        out["mfu"] = out["images_per_s"]["median"] * flops_per_image / peak_flops
    else:
        out["achieved_tflops"] = out["mfu"] = None
    out["peak_memory_mib"] = peak_memory_mib(device)
    out["setup_s"] = dict(trainer.setup_seconds)
    out["rung_wall_s"] = clock() - t0
    del trainer
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return out


def pick_winner(results: list[dict[str, Any]], tolerance: float,
                max_j_per_image: float | None = None) -> dict[str, Any]:
    """The fastest rung whose test accuracy is within ``tolerance`` of the recipe's (rung 0)
    and, with ``max_j_per_image``, whose GPU board energy per image is at most that; where no
    qualified rung meets the energy bound (or none has a GPU energy measurement: a CPU ladder),
    the fastest qualified rung, and the record says which rule named it.
    Where the recipe itself never reached the target validation accuracy (a run too short to
    train anything, e.g. --quick on a CPU), accuracy cannot separate the rungs: the gate is
    not applied, the fastest rung is named, and the record says so."""
    base = results[0]
    base_acc = base["accuracy"]["test_accuracy"]
    gate = base_acc - tolerance
    gate_applied = base["accuracy"]["epochs_to_target"] is not None
    gate_reason = None if gate_applied else (
        f"not applied: the recipe itself stayed below the target validation accuracy "
        f"({base['accuracy']['target_val_accuracy']}) in this run, so accuracy cannot rank the rungs")
    qualified = [r for r in results if r["accuracy"]["test_accuracy"] >= gate or not gate_applied]
    rule = "fastest within the accuracy gate"
    frugal = [r for r in qualified if max_j_per_image is not None and r.get("gpu_j_per_image") is not None
              and r["gpu_j_per_image"] <= max_j_per_image]
    if frugal:
        qualified = frugal
        rule = f"fastest within the accuracy gate at <= {max_j_per_image} J/image"
    elif max_j_per_image is not None:
        rule += f" (no qualified rung measured <= {max_j_per_image} J/image)"
    best = max(qualified, key=lambda r: r["images_per_s"]["median"]) if qualified else base
    for r in results:
        r["meets_accuracy_gate"] = r["accuracy"]["test_accuracy"] >= gate
        sp = ratio(r["end_to_end"]["images_per_s"], base["end_to_end"]["images_per_s"])
        r["speedup_vs_recipe"] = sp.to_dict()
        tb, tr = base["accuracy"]["time_to_target_s"], r["accuracy"]["time_to_target_s"]
        r["time_to_accuracy_ratio"] = tb / tr if tb and tr else None
        # the same without the one-time compilation and capture (a warm compile cache takes seconds)
        setup = sum(r.get("setup_s", {}).get(k, 0.0) for k in ("graph_warmup", "graph_capture"))
        r["time_to_accuracy_ratio_warm"] = tb / (tr - setup) if tb and tr and tr - setup > 0 else None
    return {
        "winner": best["name"],
        "winner_index": results.index(best),
        "winner_rule": rule,
        "accuracy_gate": gate,
        "gate_applied": gate_applied,
        "gate_reason": gate_reason,
        "recipe_test_accuracy": base_acc,
        "tolerance": tolerance,
        "speedup": best["speedup_vs_recipe"],
        "time_to_accuracy_ratio": best["time_to_accuracy_ratio"],
        "time_to_accuracy_ratio_warm": best["time_to_accuracy_ratio_warm"],
    }


def _changed(before: Levers, after: Levers) -> str:
    diff = before.diff(after)
    if not diff:
        return "unchanged"
    names = {"cpu_threads": "threads", "batch_size": "batch", "channels_last": "channels_last",
             "precision": "precision"}
    return ", ".join(f"{names.get(k, k)} {b}" for k, (a, b) in diff.items())


def run_ladder(rungs: list[Rung], data, device: torch.device, *, lr: float, base_batch: int, seed: int, epochs: int,
               target: float, tolerance: float, steps: int, repeats: int, warmup: int, min_window_s: float,
               energy=None, monitor=None, log: Callable[[str], None] | None = None, progress_factory=None,
               on_rung: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Run the rungs in order (a probe rung builds on the rung before it) and pick the winner.
    ``on_rung`` gets the results so far after every rung, so that a run cut short keeps them."""
    flops = train_flops_per_image(device)
    peaks = [measure_matmul_peak(device, torch.float32)]
    if bf16_ok(device)[0]:
        peaks.insert(0, measure_matmul_peak(device, torch.bfloat16))
    # MFU is taken against the fastest matrix product measured here: bf16 on a GPU (the card's
    # peak); on a CPU without AMX fp32 can be the faster one, and an fp32 rung would exceed 100%
    peak = max(peaks, key=lambda p: p["flops_per_s"])
    meta = {"train_flops_per_image": flops, "matmul_peak": peak, "matmul_peaks": peaks}
    results = []
    threads = torch.get_num_threads()
    prev: Levers | None = None
    for i, rung in enumerate(rungs):
        probed = None
        if rung.candidates is not None:
            chosen, probed = probe(rung.candidates(prev or rung.levers), data, device, lr=lr, base_batch=base_batch,
                                   seed=seed, window_s=min_window_s)
            rung = Rung(f"{rung.name}: {_changed(prev or rung.levers, chosen)}", chosen, rung.lever, rung.predicted)
        prev = rung.levers
        bar = progress_factory(epochs, f"rung {i + 1}/{len(rungs)} {rung.name}") if progress_factory else None
        try:
            res = run_rung(rung, data, device, lr=lr, base_batch=base_batch, seed=seed, epochs=epochs, target=target,
                           steps=steps, repeats=repeats, warmup=warmup, min_window_s=min_window_s, energy=energy,
                           monitor=monitor, flops_per_image=flops, peak_flops=peak["flops_per_s"], progress=bar)
        finally:
            if bar is not None:
                bar.close()
        if probed is not None:
            res["probe"] = probed
        results.append(res)
        if on_rung is not None:
            on_rung({"rungs": results, "partial": True, **meta})
        if log:
            acc = res["accuracy"]["test_accuracy"]
            log(f"  {rung.name:<48} {res['images_per_s']['median']:>10.0f} img/s  eff "
                f"{res['pipeline_efficiency']:.2f}  test acc {acc:.4f}")
    torch.set_num_threads(threads)
    summary = pick_winner(results, tolerance, config.WINNER_MAX_J_PER_IMAGE)
    return {"rungs": results, "summary": summary, **meta}
