"""Serving around the inference ladder: the served model (DenseNet121 trained briefly, so that
predictions are the confident ones a served model makes and the agreement check means something),
end-to-end latency from a JPEG on disk to a class, and the ladder run on MedNIST's test split."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image

from common.measure.stats import Summary
from common.measure.timing import clock, cuda_sync
from common.transforms import scale_intensity

E2E_STAGES = ("decode", "preprocess", "h2d", "model", "postprocess")


def served_model(data, device: torch.device, steps: int, seed: int, lr: float, base_batch: int,
                 batch: int = 64) -> tuple[torch.nn.Module, dict[str, Any]]:
    """DenseNet121 trained ``steps`` steps (device-resident data, fp32, batch ``batch``), in eval mode,
    with its test accuracy. ``steps`` = 0 serves the initialised network."""
    from common.workloads.levers import Levers
    from common.workloads.training import Trainer

    t0 = clock()
    batch = max(1, min(batch, len(data.train_paths_labels()[0])))  # a device-resident epoch drops a partial batch
    trainer = Trainer(data, Levers("device_resident", "fp32", False, batch, 0), device, lr=lr,
                      base_batch=base_batch, seed=seed)
    if steps:
        trainer.run_steps(steps)
    acc = trainer.evaluate("test")["accuracy"]
    model = trainer.model.eval()
    info = {"train_steps": steps, "train_batch": batch, "test_accuracy": acc, "seconds": clock() - t0,
            "what": "MONAI DenseNet121 trained briefly here (device-resident data, fp32) so its predictions "
                    "are those of a trained model"}
    return model, info


def _decode(path: str) -> np.ndarray:
    with Image.open(path) as im:
        arr = np.asarray(im.convert("L") if im.mode != "L" else im, dtype=np.uint8)
    return np.ascontiguousarray(arr.T)  # MONAI LoadImage's (PILReader) orientation, as the training data


def end_to_end(predictor, paths: Sequence[str], device: torch.device, calls: int, warmup: int = 3
               ) -> dict[str, Any]:
    """Per request: decode a JPEG (PIL), the tutorial's ScaleIntensity, transfer to the device, the
    model, argmax to a class. Each stage synchronized at its edges; the total is the request's wall
    time. Requests cycle over ``paths``."""
    stage_ms: dict[str, list[float]] = {s: [] for s in E2E_STAGES}
    totals: list[float] = []
    for i in range(warmup + calls):
        cuda_sync(device)
        t = [clock()]
        arr = _decode(paths[i % len(paths)])
        t.append(clock())
        x = scale_intensity(torch.from_numpy(arr)[None, None])
        t.append(clock())
        x = x.to(device)
        cuda_sync(device)
        t.append(clock())
        logits = predictor(x)
        cuda_sync(device)
        t.append(clock())
        int(logits.argmax(1).item())
        t.append(clock())
        if i >= warmup:
            for name, a, b in zip(E2E_STAGES, t, t[1:]):
                stage_ms[name].append((b - a) * 1e3)
            totals.append((t[-1] - t[0]) * 1e3)
    s = Summary.from_values(totals, "ms")
    return {"summary": s.to_dict(), "p50_ms": s.median, "p99_ms": s.p99, "calls": calls,
            "stage_p50_ms": {k: float(np.median(v)) for k, v in stage_ms.items()},
            "what": "JPEG on disk -> PIL decode -> ScaleIntensity -> to device -> model -> argmax (batch 1)"}


def split_images(data) -> tuple[torch.Tensor, list[str]]:
    """The test split as the model sees it (float32 scaled (N, 1, 64, 64)) and its JPEG paths."""
    imgs, _ = data.arrays("test")
    x = scale_intensity(torch.from_numpy(imgs).unsqueeze(1))
    bad = {p for p, _ in data.skipped}
    paths = [p for p in data.part("test")[0] if p not in bad]
    return x, paths
