"""MedNIST inference: batch-1 latency percentiles and throughput over batch sizes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from common.measure.stats import Summary
from common.measure.timing import clock, cuda_sync
from common.workloads.training import autocast_ctx


def _input(batch: int, device: torch.device, channels_last: bool) -> torch.Tensor:
    g = torch.Generator().manual_seed(batch)
    x = torch.rand(batch, 1, 64, 64, generator=g).to(device)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


@torch.no_grad()
def latency(model: torch.nn.Module, device: torch.device, precision: str = "fp32", channels_last: bool = False,
            calls: int = 100, warmup: int = 10, example: torch.Tensor | None = None) -> dict[str, Any]:
    """Batch-1 latency: each call synchronized at both edges (what a caller waiting for one
    prediction sees). ``model`` may be any callable; ``example`` replaces the MedNIST-shaped input."""
    if hasattr(model, "eval"):
        model.eval()
    x = _input(1, device, channels_last) if example is None else example
    times = []
    for i in range(warmup + calls):
        cuda_sync(device)
        a = clock()
        with autocast_ctx(device, precision):
            model(x)
        cuda_sync(device)
        if i >= warmup:
            times.append((clock() - a) * 1e3)
    s = Summary.from_values(times, "ms")
    return {"summary": s.to_dict(), "p50_ms": s.median, "p90_ms": float(torch.tensor(times).quantile(0.9)),
            "p95_ms": s.p95, "p99_ms": s.p99, "calls": calls, "warmup_calls": warmup}


@torch.no_grad()
def batch_throughput(model: torch.nn.Module, device: torch.device, batch_sizes: Sequence[int], precision: str = "fp32",
                     channels_last: bool = False, iters: int = 10, repeats: int = 3,
                     min_window_s: float = 0.05, make_input=None) -> list[dict[str, Any]]:
    """Inference images/s at each batch size (median of ``repeats`` windows of ``iters``
    batches); peak device memory where the device reports it. A batch that does not fit is
    recorded as such, not skipped silently. ``model`` may be any callable; ``make_input(b)``
    replaces the MedNIST-shaped input of batch ``b``."""
    if hasattr(model, "eval"):
        model.eval()
    rows = []
    for b in batch_sizes:
        try:
            x = _input(b, device, channels_last) if make_input is None else make_input(b)
            if device.type == "cuda":
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats(device)
            with autocast_ctx(device, precision):
                model(x)
            rates, lat = [], []
            for _ in range(repeats):
                cuda_sync(device)
                a = clock()
                n = 0
                while True:
                    for _ in range(iters):
                        with autocast_ctx(device, precision):
                            model(x)
                    n += iters
                    cuda_sync(device)
                    if clock() - a >= min_window_s:
                        break
                dt = clock() - a
                rates.append(b * n / dt)
                lat.append(dt / n * 1e3)
            rows.append({"batch_size": b, "images_per_s": Summary.from_values(rates, "img/s").to_dict(),
                         "batch_latency_ms": Summary.from_values(lat, "ms").to_dict(),
                         "peak_memory_mib": torch.cuda.max_memory_allocated(device) / 2**20
                         if device.type == "cuda" else None, "error": None})
        except torch.OutOfMemoryError as exc:
            rows.append({"batch_size": b, "images_per_s": None, "batch_latency_ms": None, "peak_memory_mib": None,
                         "error": f"out of memory: {str(exc).splitlines()[0]}"})
            if device.type == "cuda":
                torch.cuda.empty_cache()
    return rows
