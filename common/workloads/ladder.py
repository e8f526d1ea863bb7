"""The optimization ladder's rungs: from the MONAI tutorial recipe, one lever at a time. Each
rung is trained to the target validation accuracy in fresh processes, cold and warm, on
several seeds (``common.workloads.ladder_run``); this module says which rungs a device gets,
builds the CPU's probe rungs, and measures the ceilings MFU is taken against. Shared by the
winning_solution section and benchmarks/winning_solution.py."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from common.measure.stats import Summary
from common.measure.timing import clock, cuda_sync
from common.models import count_flops, densenet121
from common.workloads.levers import Levers
from common.workloads.throughput import timed_windows
from common.workloads.training import Trainer

# epochs of the learning-rate schedule per batch size, chosen on the validation split by
# benchmarks/schedule_probe.py's stated rule (the fewest expected training seconds among the candidates whose
# validation accuracy at the schedule's end is >= target + 0.005 on each of seeds 100-104; the ladder's seeds
# are 0-2), with the gemm_1x1 step on an H200: docs/records/schedule_probe_run_AC.json. Batch 1024: no
# candidate (3 or 4 epochs) qualified, so that rung keeps the schedule over the budget.
CHOSEN_SCHEDULES = {300: 1.5, 150: 1.0}
CHOSEN_SCHEDULES_FROM = "run AC, docs/records/schedule_probe_run_AC.json"


# MONAI's MedNIST tutorial (2d_classification/mednist_tutorial.ipynb): torch.optim.Adam(model.parameters(), 1e-5),
# constant, max_epochs = 4 over its training split of the official download (58,954 images, 10% validation and
# 10% test: ~47,160 training images, ceil(47,160 / 300) = 158 optimizer steps per epoch at batch 300)
TUTORIAL_LR = 1e-5
TUTORIAL_STEPS = 4 * 158


@dataclass
class Rung:
    name: str
    levers: Levers
    lever: str  # what this rung changes against the previous one
    predicted: str = ""  # what we expected it to give, written before measuring
    # a probe rung: candidates built from the previous rung's levers; the fastest end to end
    # (short timed windows, no training) becomes this rung's levers and is then trained and timed
    candidates: Callable[[Levers], list[Levers]] | None = None
    id: str = ""  # stable id (records, comparisons and tests use it, never the display name)
    seeds_cap: int | None = None  # measured on at most this many seeds (such a rung cannot win)
    seeds_reason: str | None = None
    min_steps: int = 0  # its epoch budget grows to hold at least this many optimizer steps (the recipe's:
    # the tutorial's own length, TUTORIAL_STEPS)

    def __post_init__(self):
        if not self.id:
            self.id = self.levers.label().replace(" ", "_")


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
                          "kernel tails overlap the next kernel's start: +2-5% (~2,000 kernels per step)", id="pdl",
                          seeds_cap=1, seeds_reason="one seed: minutes of compilation"))
    if inductor_has("coordinate_descent_tuning"):
        opts["coordinate_descent_tuning"] = True
        cur = cur.replace(compile_options=tuple(sorted(opts.items())))
        rungs.append(Rung("coordinate-descent tuned kernels", cur, "inductor coordinate_descent_tuning=True",
                          "better block sizes for the memory-bound BN/ReLU kernels: +3-8%; over 10 min of compilation",
                          id="coordinate_descent", seeds_cap=1, seeds_reason="one seed: over 10 min of compilation"))
    else:
        notes.append("coordinate-descent rung left out: this torch's inductor has no coordinate_descent_tuning")
    return rungs, notes


def default_rungs(device: torch.device, batch: int, workers: int, quick: bool, tuning: bool = False,
                  compiled: bool = True) -> tuple[list[Rung], list[str]]:
    """The ladder for this device. Returns (rungs, notes about rungs left out and why).

    Each rung is ranked by its time to the target validation accuracy, cold and warm, every
    one-time cost counted (``common.workloads.time_to_target``). ``compiled`` adds the
    torch.compile rungs (GPU; minutes of cold compilation, one seed each); ``tuning`` adds
    inductor's tuning rungs after them (``tuning_rungs``)."""
    notes: list[str] = []
    # the tutorial as written: Adam at 1e-5, constant, no cuDNN autotuning (it sets none)
    base = Levers("tutorial", "fp32", False, batch, workers, cudnn_benchmark=False, lr=TUTORIAL_LR,
                  lr_schedule="constant")
    # on a GPU its budget holds the tutorial's own length (632 steps: 20 epochs of the 9,600-image sample); on a
    # CPU the budget stays CPU_EPOCHS (632 steps would take hours there), and the record says the recipe stopped
    gpu = device.type == "cuda"
    rungs = [Rung("MONAI tutorial recipe", base, "baseline: the tutorial as written (per-sample MONAI transforms "
                  "in DataLoader workers, fp32, Adam at 1e-5 constant)", "data loading bound on a GPU; compute "
                  "bound on a CPU; 1e-5 is a slow rate for a model trained from scratch", id="recipe",
                  min_steps=TUTORIAL_STEPS if gpu else 0)]
    if not gpu:
        notes.append(f"the recipe's epoch budget is the CPU's (CPU_EPOCHS), not the tutorial's {TUTORIAL_STEPS} "
                     "optimizer steps: at Adam 1e-5 it may stop short of the target")
    cur = base.replace(lr=None, lr_schedule="warmup_cosine")
    rungs.append(Rung("Adam at 1e-3, warm-up + cosine decay", cur, "lr=LEARNING_RATE (square-root scaled to the "
                      "batch), lr_schedule=warmup_cosine", "a 100x larger rate with a warm-up (Goyal et al. 2017) and "
                      "cosine decay (Loshchilov & Hutter 2017): the target in 2-3 epochs instead of many",
                      id="lr_schedule"))
    cur = cur.replace(data_path="device_resident", num_workers=0)
    rungs.append(Rung("device-resident data, batched device augmentation", cur,
                      "data_path=device_resident (JPEGs decoded once, in parallel, and cached on disk)",
                      "removes the data stall and the per-epoch worker start: most of the recipe's time",
                      id="device_resident"))
    if device.type == "cpu":
        if not quick:  # the CPU's own levers, each the fastest of a short probe
            rungs.append(Rung("threads", cur, "cpu_threads: the fastest of half the physical cores, all physical "
                              "cores, all logical CPUs", "all physical cores; hyper-threads add little to "
                              "convolutions", candidates=thread_candidates, id="threads"))
            ok, why = bf16_ok(device)
            if not ok:
                notes.append(f"bf16 left out of the precision probe: {why}")
            rungs.append(Rung("precision x memory format", cur, "the fastest of fp32" + ("/bf16" if ok else "")
                              + " x NCHW/NHWC", "bf16 + channels_last where the CPU has AMX; fp32 channels_last "
                              "without it", candidates=format_candidates(device), id="format"))
        else:
            rungs.append(Rung("channels_last", cur.replace(channels_last=True), "channels_last=True",
                              "oneDNN's NHWC convolutions", id="channels_last"))
        return rungs, notes
    ok, why = bf16_ok(device)
    if ok:
        cur = cur.replace(precision="bf16", channels_last=True)
        rungs.append(Rung("bf16 autocast + channels_last", cur, "precision=bf16, channels_last=True",
                          "tensor cores and cuDNN's NHWC kernels: 1.5-2.5x per step", id="bf16_channels_last"))
    else:
        notes.append(f"bf16 rung left out: {why}")
        cur = cur.replace(channels_last=True)
    cur = cur.replace(graph="cuda_graph")
    rungs.append(Rung("CUDA graph (whole step captured)", cur, "graph=cuda_graph",
                      "removes launch overhead (~600 kernels per step): 2-3x per step, for a capture of seconds",
                      id="cuda_graph"))
    cur = cur.replace(prewarm=True)
    rungs.append(Rung("+ kernels warmed while the JPEGs decode", cur, "prewarm=True",
                      "the first step's kernel loading and cuDNN plans (1.2-1.6 s) and the first validation's "
                      "(0.35-0.6 s) paid on random data under the cold decode (1.3-1.5 s); a warm run has no "
                      "decode to hide them under", id="cuda_graph_prewarm"))
    cur = cur.replace(gemm_1x1=True)
    rungs.append(Rung("+ 1x1 convolutions as matrix products", cur, "gemm_1x1=True",
                      "61 of DenseNet121's 66 convolution shapes go to cuBLAS: ~180 fewer cuDNN plans to build on "
                      "the first step, cold and warm alike; a step about as fast", id="gemm_1x1"))
    small = max(32, batch // 2)
    for b, name in ((batch, ""), (small, f"batch {small} + ")):
        epochs = CHOSEN_SCHEDULES.get(b)
        if epochs is None:
            notes.append(f"schedule rung for batch {b} left out: no schedule was chosen for that batch on the "
                         f"validation split (benchmarks/schedule_probe.py --batches {b})")
            continue
        rungs.append(Rung(f"{name}a {epochs:g}-epoch schedule", cur.replace(batch_size=b, schedule_epochs=epochs),
                          (f"batch_size={b}, " if b != batch else "") + f"schedule_epochs={epochs:g}",
                          "the learning rate decays to its floor by the schedule's end instead of the budget's "
                          "(chosen on the validation split, seeds 100-104: " + CHOSEN_SCHEDULES_FROM + ")",
                          id="schedule" if b == batch else f"schedule_b{b}"))
    sched = cur.replace(schedule_epochs=CHOSEN_SCHEDULES.get(batch))
    rungs.append(Rung("CUDA graph + cuDNN autotuning", sched.replace(cudnn_benchmark=True), "cudnn_benchmark=True",
                      "autotunes the convolution shapes forward and backward: ~20 s once for ~120 shapes (measured "
                      "on an H200 before gemm_1x1 left 5 to cuDNN) for kernels a few % faster",
                      id="cuda_graph_autotune"))
    if quick:
        return rungs, notes
    big = max(1024, batch)
    rungs.append(Rung(f"batch {big} + CUDA graph", cur.replace(batch_size=big), f"batch_size={big}",
                      "larger kernels: +10-20% per image, but fewer optimizer steps per epoch: more epochs to "
                      "the target (learning rate by the square-root rule; no schedule of 3 or 4 epochs qualified on "
                      "the validation split, run AC: it spans the budget)", id=f"cuda_graph_b{big}"))
    if not compiled:
        notes.append("torch.compile rungs left out (compiled=False: LADDER_COMPILED_RUNGS)")
        return rungs, notes
    leader = cur.replace(batch_size=2 * big, graph="compile_cuda_graph", fused_optimizer=True, concat_free=True,
                         gemm_1x1=False, cudnn_benchmark=True)
    rungs.append(Rung(f"compiled, fused Adam, concat-free, batch {2 * big} (throughput leader)", leader,
                      "graph=compile_cuda_graph, fused_optimizer, concat_free, batch_size x2",
                      "the most images per second (issue 7's winner): minutes of compilation cold, a warm "
                      "compile cache cuts that; half the optimizer steps per epoch", id="compiled_leader",
                      seeds_cap=1, seeds_reason="one seed: its cold compilation takes minutes"))
    if tuning:
        extra, why = tuning_rungs(leader, device)
        rungs += extra
        notes += why
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




def _changed(before: Levers, after: Levers) -> str:
    diff = before.diff(after)
    if not diff:
        return "unchanged"
    names = {"cpu_threads": "threads", "batch_size": "batch", "channels_last": "channels_last",
             "precision": "precision"}
    return ", ".join(f"{names.get(k, k)} {b}" for k, (a, b) in diff.items())
