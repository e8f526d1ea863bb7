#!/usr/bin/env python3
"""Sampler overhead: a fixed workload's throughput with no samplers, and with the CPU
(and, where there is one, GPU) samplers at 10 Hz and at 100 Hz. Runs the three variants
interleaved, several rounds, and prints the throughput ratios.

    python benchmarks/sampler_overhead.py [--seconds 3] [--rounds 5]
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=3.0, help="length of each timed window")
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds of the three variants")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    args = p.parse_args(argv)

    import numpy as np
    import torch

    from common.measure.samplers import Monitor
    from common.measure.timing import clock, cuda_sync
    from common.models import densenet121

    dev = torch.device(args.device)
    model = densenet121().to(dev).eval()
    x = torch.rand(16 if dev.type == "cpu" else 256, 1, 64, 64, device=dev)

    def workload() -> float:
        """Inference batches for ``seconds``; returns images/s."""
        n = 0
        cuda_sync(dev)
        t0 = clock()
        with torch.no_grad():
            while clock() - t0 < args.seconds:
                model(x)
                n += x.shape[0]
        cuda_sync(dev)
        return n / (clock() - t0)

    workload()  # warm-up
    variants = {"none": None, "10 Hz": 10.0, "100 Hz": 100.0}
    rates: dict[str, list[float]] = {k: [] for k in variants}
    busy: dict[str, list[float]] = {k: [] for k in variants if variants[k]}
    for _ in range(args.rounds):
        for name, hz in variants.items():
            ctx = Monitor(hz, gpu_index=0 if dev.type == "cuda" else None) if hz else contextlib.nullcontext()
            with ctx as mon:
                rates[name].append(workload())
            if hz:
                busy[name].append(sum(s.overhead()["busy_fraction"] or 0 for s in mon.samplers))
    base = float(np.median(rates["none"]))
    print(f"workload: DenseNet121 inference, batch {x.shape[0]}, on {dev}; {torch.get_num_threads()} threads; "
          f"{args.rounds} rounds of {args.seconds:.0f} s")
    print(f"{'samplers':<8} {'img/s (median)':>15} {'ratio to none':>14} {'overhead':>9} {'sampler busy':>13}")
    for name in variants:
        med = float(np.median(rates[name]))
        b = f"{100 * float(np.median(busy[name])):.2f}%" if name in busy else "-"
        print(f"{name:<8} {med:>15.1f} {med / base:>14.4f} {100 * (1 - med / base):>8.2f}% {b:>13}")
    spread = (max(rates["none"]) - min(rates["none"])) / base
    print(f"run-to-run spread of the no-sampler rate: {100 * spread:.2f}% (differences below it are noise)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
