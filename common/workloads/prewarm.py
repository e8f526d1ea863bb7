"""Warm a process's CUDA kernels, cuBLAS/cuDNN plans and the caching allocator while the JPEGs
decode, on the real trainer, and leave it exactly as it was.

A fresh process pays, on its first training step and its first validation pass, for loading
every CUDA kernel it touches (lazy module loading), for cuBLAS's and cuDNN's first call per
shape and for the allocator's first blocks: 0.9-1.2 s on an H200 for the captured step with
gemm_1x1 (runs AC, AD), before any useful work. None of it depends on the pixels or the
weights. ``prewarm`` pays it with one eager training step and one validation pass of the real
trainer on random data of the training and validation batch shapes, while the real data is
still being decoded in other processes (``overlapped``), then puts back what the step changed:
the weights and BatchNorm statistics (a copy taken before), the optimizer's state (emptied: the
first real step creates it again, as it would have) and the CPU and CUDA random streams. The
trainer then trains as it would have without it, bit for bit; a test checks that on the CPU.

(Until run AD a throwaway trainer with its own model did this: building it cost 0.13-0.28 s
on the clock. The real trainer is built anyway, so it is built first and warmed.)

Everything here is on the run's clock: it moves one-time cost under the decode, it does not
hide it. Where nothing decodes (a warm run loads its decoded cache in a tenth of a second)
it saves only what running these costs apart costs less than meeting them in the first
steps."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import torch

from common.transforms import scale_intensity

PREWARM_STEPS = 1  # eager training steps on random data: the first loads every kernel and builds every plan;
# a second cost 0.05 s and loaded nothing new (run AB); the trainer runs two of its own before capture


def _snapshot(trainer) -> dict[str, Any]:
    dev = trainer.device
    return {"model": {k: v.detach().clone() for k, v in trainer.model.state_dict().items()},
            "cpu_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state(dev) if dev.type == "cuda" else None}


def _restore(trainer, snap: dict[str, Any]) -> None:
    with torch.no_grad():
        trainer.model.load_state_dict(snap["model"])
    trainer.optimizer.zero_grad(set_to_none=True)
    trainer.optimizer.state.clear()  # Adam's moments and step counts: made again by the first real step
    torch.set_rng_state(snap["cpu_rng"])
    if snap["cuda_rng"] is not None:
        torch.cuda.set_rng_state(snap["cuda_rng"], trainer.device)


def prewarm(trainer, steps: int = PREWARM_STEPS) -> dict[str, Any]:
    """``steps`` eager training steps and one validation pass of ``trainer`` on random data,
    then its weights, BatchNorm statistics, optimizer state and random streams as before;
    returns the times."""
    from common.measure.timing import clock, cuda_sync
    from common.workloads.training import _no_window

    dev = trainer.device
    lv = trainer.levers
    t0 = clock()
    snap = _snapshot(trainer)
    g = torch.Generator(device="cpu").manual_seed(12345)
    batch, val_batch = lv.batch_size, trainer.eval_batch_size()
    x = torch.randint(0, 256, (batch, 1, 64, 64), generator=g, dtype=torch.uint8).to(dev)
    y = torch.randint(0, 6, (batch,), generator=g).to(dev)
    vx = torch.randint(0, 256, (val_batch, 1, 64, 64), generator=g, dtype=torch.uint8).to(dev)
    vy = torch.randint(0, 6, (val_batch,), generator=g).to(dev)
    snap_s = clock() - t0
    step_s = []
    for _ in range(steps):
        a = clock()
        xs = trainer.augment(scale_intensity(x))
        if lv.channels_last:
            xs = xs.contiguous(memory_format=torch.channels_last)
        trainer._optimize(xs, y, _no_window)
        cuda_sync(dev)
        step_s.append(clock() - a)
    a = clock()
    trainer.evaluate_tensors(vx, vy)
    val_s = clock() - a
    a = clock()
    _restore(trainer, snap)
    cuda_sync(dev)
    return {"total_s": clock() - t0, "snapshot_s": snap_s, "step_s": step_s, "val_s": val_s,
            "restore_s": clock() - a, "steps": steps,
            "what": f"{steps} eager step(s) and one validation pass of the real trainer on random data, its "
                    "weights, BatchNorm statistics, optimizer state and random streams put back after"}


def overlapped(work: Callable[[], Any], trainer) -> tuple[Any, dict[str, Any]]:
    """Run ``work`` (the decode) in a thread while this thread prewarms ``trainer``; return
    its result and the prewarm's record with the seconds spent waiting for ``work`` after."""
    box: dict[str, Any] = {}

    def run() -> None:
        t = time.perf_counter()
        try:
            box["result"] = work()
        except BaseException as exc:  # noqa: BLE001 -- re-raised in the caller's thread below
            box["error"] = exc
        box["s"] = time.perf_counter() - t

    thread = threading.Thread(target=run, name="decode", daemon=True)
    thread.start()
    try:
        info = prewarm(trainer)
    finally:
        t = time.perf_counter()
        thread.join()
        waited = time.perf_counter() - t
    if "error" in box:
        raise box["error"]
    info.update(overlapped_with_s=box["s"], waited_for_decode_s=waited)
    return box["result"], info
