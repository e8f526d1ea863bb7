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
    p.add_argument("--seconds", type=float, default=2.0, help="length of each timed window")
    p.add_argument("--rounds", type=int, default=12, help="interleaved rounds of the three variants")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    args = p.parse_args(argv)

    import numpy as np
    import torch

    from common.measure.samplers import Monitor
    from common.measure.stats import Summary
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
    order = list(variants)
    for r in range(args.rounds):
        for name in order[r % 3:] + order[:r % 3]:  # rotate the order so drift does not favour one variant
            hz = variants[name]
            ctx = Monitor(hz, gpu_index=0 if dev.type == "cuda" else None) if hz else contextlib.nullcontext()
            with ctx as mon:
                rates[name].append(workload())
            if hz:
                busy[name].append(sum(s.overhead()["busy_fraction"] or 0 for s in mon.samplers))
    base = float(np.median(rates["none"]))
    print(f"workload: DenseNet121 inference, batch {x.shape[0]}, on {dev}; {torch.get_num_threads()} threads; "
          f"{args.rounds} rounds of {args.seconds:.0f} s")
    print("overhead = 1 - (rate with samplers / rate without) in the same round; median of the rounds and its "
          "95% bootstrap interval")
    print(f"{'samplers':<8} {'img/s (median)':>15} {'overhead':>9} {'95% interval':>18} {'sampler busy':>13}")
    for name in variants:
        med = float(np.median(rates[name]))
        if name == "none":
            print(f"{name:<8} {med:>15.1f} {'-':>9} {'-':>18} {'-':>13}")
            continue
        paired = Summary.from_values([1 - a / b for a, b in zip(rates[name], rates["none"])], "fraction")
        lo, hi = paired.ci95
        b = f"{100 * float(np.median(busy[name])):.2f}%"
        print(f"{name:<8} {med:>15.1f} {100 * paired.median:>8.2f}% {f'[{100 * lo:.2f}%, {100 * hi:.2f}%]':>18} "
              f"{b:>13}")
    spread = (max(rates["none"]) - min(rates["none"])) / base
    print(f"run-to-run spread of the no-sampler rate: {100 * spread:.2f}%; 'sampler busy' is the samplers' own "
          f"reading time as a share of wall time (of one core)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
