#!/usr/bin/env python3
"""Sampler overhead: what the samplers (CPU and, on CUDA, GPU) cost a training step.

A training workload runs in interleaved windows without and with the samplers,
A0 B0 A1 B1 ... B(n-1) An (A: no samplers, B: samplers at --hz). Each B window is paired with
the mean of the two A windows around it, which cancels a linear drift of clocks and board
temperature; the overhead is 1 - B/A averaged over the pairs, with a 95% t interval over the
pairs (independent repeats). Rounds continue until that interval is at most +-TARGET points
(--target) or the time budget is spent. A warm-up brings the board to temperature first.

Workload: on CUDA the training step as in the ladder's winning rung (DenseNet121, bf16 autocast,
channels_last, batch 512, inputs resident on the device, Adam, the whole step captured in one
CUDA graph: GPU-bound, as in training; --no-graph for the eager step, whose Python dispatch
competes with the samplers' threads for the interpreter); on CPU a small 2-layer CNN in
fp32 (--network densenet121 for the real network: seconds per step on a small CPU). Inputs are
random tensors of MedNIST's shape: the cost of a step, not an accuracy, is measured. Also
printed: each sampler's read time per field family.

    python benchmarks/sampler_overhead.py --device cuda --out overhead.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DEFAULTS = {  # device: (window seconds, warm-up seconds, batch, time budget seconds, network)
    "cuda": (5.0, 30.0, 512, 140.0, "densenet121"),
    "cpu": (1.0, 2.0, 32, 60.0, "small"),
}


def small_cnn():
    """A small 2D CNN for MedNIST's shape (CPU default: a DenseNet121 step takes seconds there)."""
    import torch.nn as nn

    return nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 32, 3, stride=2, padding=1),
                         nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 6))


def build_step(device: str, batch: int, network: str = "densenet121", graph: bool = False):
    """A training step on resident random inputs; returns (step, images per step). ``graph``
    (CUDA): the whole step captured in one CUDA graph (PyTorch's whole-network recipe: warm-up
    steps on a side stream, capture with the gradients set to None, replay)."""
    import torch
    import torch.nn.functional as F

    from common.models import densenet121

    dev = torch.device(device)
    cuda = dev.type == "cuda"
    fmt = torch.channels_last if cuda else torch.contiguous_format
    model = (densenet121() if network == "densenet121" else small_cnn()).to(dev).to(memory_format=fmt)
    graph = graph and cuda
    opt = torch.optim.Adam(model.parameters(), 1e-3, **({"capturable": True} if graph else {}))
    x = torch.rand(batch, 1, 64, 64, device=dev).to(memory_format=fmt)
    y = torch.randint(0, 6, (batch,), device=dev)

    def body() -> None:
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=cuda, cache_enabled=not graph):
            loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        body()

    if not graph:
        return step, batch
    side = torch.cuda.Stream(dev)
    side.wait_stream(torch.cuda.current_stream(dev))
    with torch.cuda.stream(side):
        for _ in range(3):
            step()
    torch.cuda.current_stream(dev).wait_stream(side)
    opt.zero_grad(set_to_none=True)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        body()
    torch.cuda.synchronize(dev)
    return g.replay, batch


def rate_window(step, images: int, seconds: float, device: str) -> float:
    """Images per second over whole steps for ``seconds`` (synchronized at both edges)."""
    from common.measure.timing import clock, cuda_sync

    cuda_sync(device)
    t0 = clock()
    n = 0
    while clock() - t0 < seconds:
        step()
        n += images
    cuda_sync(device)
    return n / (clock() - t0)


def merge_overheads(overheads: list[dict]) -> dict:
    """Per sampler and family, reads and mean/max read time over every monitored window."""
    out: dict = {}
    for per_sampler in overheads:
        for name, ov in per_sampler.items():
            s = out.setdefault(name, {"ticks": 0, "tick_ms_sum": 0.0, "max_read_ms": 0.0, "families": {}})
            s["ticks"] += ov["samples"]
            s["tick_ms_sum"] += (ov["mean_read_ms"] or 0.0) * ov["samples"]
            s["max_read_ms"] = max(s["max_read_ms"], ov["max_read_ms"] or 0.0)
            for fam, f in ov["families"].items():
                t = s["families"].setdefault(fam, {"slow": f["slow"], "reads": 0, "ms_sum": 0.0, "max_ms": 0.0})
                t.update(slow=f["slow"], every=f.get("every"), demoted=f.get("demoted"))  # as in the last window
                t["reads"] += f["reads"]
                t["ms_sum"] += (f["mean_ms"] or 0.0) * f["reads"]
                t["max_ms"] = max(t["max_ms"], f["max_ms"] or 0.0)
    for s in out.values():
        s["mean_read_ms"] = s.pop("tick_ms_sum") / s["ticks"] if s["ticks"] else None
        for f in s["families"].values():
            f["mean_ms"] = f.pop("ms_sum") / f["reads"] if f["reads"] else None
    return out


def gpu_state() -> dict | None:
    """Board temperature, SM clock, power and throttle reasons now (None without NVML)."""
    from common.measure.samplers import GPUSampler, decode_throttle, nvml_available

    if not nvml_available()[0]:
        return None
    s = GPUSampler(10).sample_once()
    s["throttle_reasons"] = decode_throttle(s["throttle_mask"]) if s.get("throttle_mask") is not None else None
    return {k: s.get(k) for k in ("temperature_c", "sm_clock_mhz", "power_w", "throttle_reasons")}


def run_rounds(args, step, images: int, progress=print) -> dict:
    from common.measure.samplers import Monitor
    from common.measure.stats import paired_overhead
    from common.measure.timing import clock

    gpu_index = 0 if args.device == "cuda" else None
    t_start = clock()
    base = [rate_window(step, images, args.seconds, args.device)]
    treated, overheads, paired = [], [], paired_overhead(base, [])
    while len(treated) < args.max_rounds:
        with Monitor(args.hz, gpu_index=gpu_index) as mon:
            treated.append(rate_window(step, images, args.seconds, args.device))
        overheads.append({s.name: s.overhead() for s in mon.samplers})
        base.append(rate_window(step, images, args.seconds, args.device))
        paired = paired_overhead(base, treated)
        hw = paired["half_width"]
        progress(f"  round {len(treated)}: {base[-2]:.0f} / {treated[-1]:.0f} / {base[-1]:.0f} img/s; overhead "
                 f"{100 * paired['mean']:+.2f}%" + (f" +-{100 * hw:.2f}" if hw is not None else ""))
        if len(treated) >= args.min_rounds and hw is not None and hw <= args.target / 100:
            break
        if clock() - t_start > args.budget_s and len(treated) >= 2:
            break
    return {"baseline_img_s": base, "with_samplers_img_s": treated, "overhead": paired,
            "target_half_width_points": args.target,
            "target_met": paired["half_width"] is not None and paired["half_width"] <= args.target / 100,
            "sampler_read_time": merge_overheads(overheads), "unavailable": dict(mon.unavailable)}


def print_result(res: dict, args) -> None:
    o = res["overhead"]
    print(f"overhead at {args.hz:g} Hz: {100 * o['mean']:+.2f}%", end="")
    if o["ci95"]:
        lo, hi = o["ci95"]
        print(f", 95% CI [{100 * lo:+.2f}%, {100 * hi:+.2f}%] ({o['interval_kind']}, {o['pairs']} pairs)"
              + ("" if res["target_met"] else f"; the +-{args.target:g}-point target was NOT met within the budget"))
    else:
        print(" (one pair: no interval)")
    for name, s in res["sampler_read_time"].items():
        def rate(f):
            if not f["slow"]:
                return ""
            moved = ", moved there by the tick budget" if f.get("demoted") else ""
            return f" (every {f.get('every') or args.slow_every}th tick{moved})"

        fams = ", ".join(f"{k} {f['mean_ms']:.3f}{rate(f)}" for k, f in s["families"].items()
                         if f["mean_ms"] is not None)
        print(f"{name} sampler: mean read {s['mean_read_ms']:.3f} ms per tick (max {s['max_read_ms']:.1f} ms); "
              f"per family (ms a read): {fams}")
    for name, why in res["unavailable"].items():
        print(f"{name} sampler not available: {why}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--hz", type=float, default=10.0, help="sampling rate of the B windows (default 10)")
    p.add_argument("--seconds", type=float, help="length of each window (cuda 5, cpu 1)")
    p.add_argument("--warmup-s", type=float, help="warm-up before the rounds (cuda 30, cpu 2)")
    p.add_argument("--batch", type=int, help="training batch (cuda 512, cpu 32)")
    p.add_argument("--network", choices=["densenet121", "small"], help="cuda: densenet121, cpu: small (a 2-layer CNN)")
    p.add_argument("--graph", action=argparse.BooleanOptionalAction, default=True,
                   help="CUDA: the whole step captured in a CUDA graph, GPU-bound as the ladder's winner "
                        "(default); --no-graph: the eager step")
    p.add_argument("--budget-s", type=float, help="stop adding rounds after this many seconds (cuda 140, cpu 60)")
    p.add_argument("--min-rounds", type=int, default=6)
    p.add_argument("--max-rounds", type=int, default=60)
    p.add_argument("--target", type=float, default=1.0, help="stop when the 95%% CI is within +-TARGET points")
    p.add_argument("--out", type=Path, help="write the result as JSON here")
    args = p.parse_args(argv)
    if args.max_rounds < 1 or args.min_rounds < 1:
        p.error("--min-rounds and --max-rounds must be at least 1")
    d = DEFAULTS[args.device]
    args.seconds = args.seconds or d[0]
    args.warmup_s = d[1] if args.warmup_s is None else args.warmup_s
    args.batch = args.batch or d[2]
    args.budget_s = d[3] if args.budget_s is None else args.budget_s
    args.network = args.network or d[4]
    from common.measure.samplers import SLOW_EVERY

    args.slow_every = SLOW_EVERY
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            print("error: --device cuda but torch sees no CUDA device; use --device cpu", file=sys.stderr)
            return 2
    import torch

    from common.measure.environment import collect

    step, images = build_step(args.device, args.batch, args.network, graph=args.graph)
    graphed = args.graph and args.device == "cuda"
    before = gpu_state() if args.device == "cuda" else None
    warm = rate_window(step, images, max(args.warmup_s, 0.0), args.device) if args.warmup_s > 0 else None
    after = gpu_state() if args.device == "cuda" else None
    print(f"workload: {args.network} training step, batch {args.batch}, on {args.device}"
          + ((" (bf16, channels_last" + (", one CUDA graph)" if graphed else ", eager)")) if args.device == "cuda"
             else f" (fp32, {torch.get_num_threads()} threads)")
          + f"; warm-up {args.warmup_s:g} s" + (f" ({warm:.0f} img/s)" if warm else "")
          + (f"; board {before and before['temperature_c']} -> {after['temperature_c']} C" if after else ""))
    res = run_rounds(args, step, images)
    res.update(workload={"network": args.network, "batch": args.batch, "device": args.device,
                         "precision": "bf16 autocast" if args.device == "cuda" else "fp32",
                         "step": "whole step in one CUDA graph" if graphed else "eager",
                         "inputs": "random tensors of MedNIST's shape, resident on the device"},
               settings={k: getattr(args, k) for k in ("hz", "seconds", "warmup_s", "budget_s", "min_rounds",
                                                       "max_rounds", "target", "slow_every")},
               warmup={"img_s": warm, "gpu_before": before, "gpu_after": after}, environment=collect())
    print_result(res, args)
    if args.out:
        from common.atomic import write_json

        write_json(args.out, res)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
