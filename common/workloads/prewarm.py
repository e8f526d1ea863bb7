"""Warm a process's CUDA kernels and cuDNN plans while the JPEGs decode.

A fresh process pays, on its first training step and its first validation pass, for loading
every CUDA kernel it touches (lazy module loading) and for building a cuDNN plan per
convolution shape: 1.2-1.6 s and 0.35-0.6 s on an H200 (runs 15-A and 15-T), before any
useful work. Neither depends on the pixels. ``prewarm`` pays them on random data of the
training and validation batch shapes, in a throwaway trainer built from the same levers
(eager: the real trainer captures its own graph), while the real data is still being decoded
in other processes (``overlapped``). The real trainer's first steps then find the kernels
loaded and the plans cached; its weights, optimizer state and random streams are its own
and untouched: the throwaway has its own model, optimizer and seed.

Everything here is on the run's clock: it moves one-time cost under the decode, it does not
hide it. Where nothing decodes (a warm run loads its decoded cache in a tenth of a second)
it saves only what the throwaway's steps cost less than the real first steps would have."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from common.data.mednist import Split

PREWARM_STEPS = 1  # eager training steps of the throwaway trainer: the first loads every kernel and builds every
# plan; a second cost 0.05 s and loaded nothing new (run AB), and the real trainer runs two of its own before capture


def _random_data(batch: int, val_batch: int, seed: int = 0):
    """A MedNISTData of random uint8 images: one training batch and one validation batch."""
    from common.workloads.mednist_data import MedNISTData

    rng = np.random.default_rng(seed)
    n_train, n_val = batch, val_batch
    split = Split([f"prewarm/train/{i}" for i in range(n_train)], [i % 6 for i in range(n_train)],
                  [f"prewarm/val/{i}" for i in range(n_val)], [i % 6 for i in range(n_val)], [], [])
    data = MedNISTData(split, [f"class{i}" for i in range(6)], source={"synthetic": True, "what": "prewarm"})
    data._arrays["train"] = (rng.integers(0, 256, (n_train, 64, 64), dtype=np.uint8),
                             np.asarray(split.train_labels, dtype=np.int64))
    data._arrays["val"] = (rng.integers(0, 256, (n_val, 64, 64), dtype=np.uint8),
                           np.asarray(split.val_labels, dtype=np.int64))
    return data


def prewarm(levers, device: torch.device, steps: int = PREWARM_STEPS) -> dict[str, Any]:
    """``steps`` eager training steps and one validation pass of a throwaway trainer with
    ``levers`` (graph capture and compilation left out) on random data; returns their times."""
    from common.measure.timing import clock, cuda_sync
    from common.workloads.training import Trainer

    t0 = clock()
    lv = levers.replace(graph="none", prewarm=False)
    val_batch = min(levers.batch_size, 1024)  # Trainer.evaluate's batch
    throwaway = Trainer(_random_data(levers.batch_size, val_batch), lv, device, seed=12345)
    built = clock() - t0
    step_s = []
    for _ in range(steps):
        a = clock()
        throwaway.run_steps(1)
        cuda_sync(device)
        step_s.append(clock() - a)
    a = clock()
    throwaway.evaluate("val")
    val_s = clock() - a
    del throwaway
    return {"total_s": clock() - t0, "build_s": built, "step_s": step_s, "val_s": val_s, "steps": steps,
            "what": f"{steps} eager steps and one validation pass of a throwaway trainer on random data"}


def overlapped(work: Callable[[], Any], levers, device: torch.device) -> tuple[Any, dict[str, Any]]:
    """Run ``work`` (the decode) in a thread while this thread prewarms; return its result and
    the prewarm's record with the seconds spent waiting for ``work`` after the prewarm ended."""
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
        info = prewarm(levers, device)
    finally:
        t = time.perf_counter()
        thread.join()
        waited = time.perf_counter() - t
    if "error" in box:
        raise box["error"]
    info.update(overlapped_with_s=box["s"], waited_for_decode_s=waited)
    return box["result"], info
