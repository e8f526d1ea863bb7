"""Augmentation workload: the tutorial chain transform by transform, per sample with MONAI
on one CPU core (as in a DataLoader worker) and batched on the analysed device; quality
against the input, identity checks, and the device's difference from MONAI's reference."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from common.measure.stats import Summary
from common.measure.timing import clock, cuda_sync
from common.quality import psnr, ssim
from common.transforms import TUTORIAL_STAGES, BatchedAugment2D, monai_reference, scale_intensity

TRANSFORMS = list(TUTORIAL_STAGES)  # LoadImage, EnsureChannelFirst, ScaleIntensity, RandRotate, RandFlip, RandZoom


def _monai_forced() -> dict[str, Any]:
    """Each tutorial transform, with random ones forced to fire (prob=1): cost when applied."""
    from monai.transforms import EnsureChannelFirst, LoadImage, RandFlip, RandRotate, RandZoom, ScaleIntensity

    from common.transforms import ROTATE_RANGE, ZOOM_RANGE

    return {
        "LoadImage": LoadImage(image_only=True),
        "EnsureChannelFirst": EnsureChannelFirst(),
        "ScaleIntensity": ScaleIntensity(),
        "RandRotate": RandRotate(range_x=ROTATE_RANGE, prob=1.0, keep_size=True),
        "RandFlip": RandFlip(spatial_axis=0, prob=1.0),
        "RandZoom": RandZoom(min_zoom=ZOOM_RANGE[0], max_zoom=ZOOM_RANGE[1], prob=1.0),
    }


def cpu_per_sample(paths: list[str], repeats: int = 3, seed: int = 0) -> dict[str, Any]:
    """Per-transform microseconds per image with MONAI on one thread (forced to fire), and
    the chain's images/s at the tutorial probabilities."""
    from common.transforms import TimedCompose, tutorial_train_transforms

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        forced = _monai_forced()
        for t in forced.values():
            if hasattr(t, "set_random_state"):
                t.set_random_state(seed)
        per: dict[str, list[float]] = {k: [] for k in TRANSFORMS}
        for _ in range(repeats):
            acc = dict.fromkeys(TRANSFORMS, 0.0)
            for p in paths:
                x = p
                for name in TRANSFORMS:
                    a = clock()
                    x = forced[name](x)
                    acc[name] += clock() - a
            for name in TRANSFORMS:
                per[name].append(acc[name] / len(paths) * 1e6)
        chain = TimedCompose(tutorial_train_transforms(load=True), seed=seed)
        rates = []
        for _ in range(repeats):
            a = clock()
            for p in paths:
                chain(p)
            rates.append(len(paths) / (clock() - a))
    finally:
        torch.set_num_threads(threads)
    return {
        "threads": 1,
        "images": len(paths),
        "per_transform_us": {k: Summary.from_values(v, "us/image").to_dict() for k, v in per.items()},
        "chain_images_per_s": Summary.from_values(rates, "img/s").to_dict(),
    }


def device_batched(images_u8: np.ndarray, device: torch.device, batch_size: int, repeats: int = 5,
                   seed: int = 0) -> dict[str, Any]:
    """Per-transform microseconds per image of the batched chain on ``device`` (each forced
    to fire, synchronized windows), and the chain's images/s at the tutorial probabilities.
    Decoding is not part of it: the batch starts as uint8 already in device memory."""
    aug = BatchedAugment2D().to(device)
    n = min(batch_size, len(images_u8))
    reps = int(np.ceil(batch_size / n))
    raw = torch.from_numpy(np.tile(images_u8[:n], (reps, 1, 1))[:batch_size]).unsqueeze(1).to(device)
    g = torch.Generator(device=device).manual_seed(seed)
    x = scale_intensity(raw)
    p = aug.sample(batch_size, device, g)
    on = torch.ones(batch_size, dtype=torch.bool, device=device)
    off = torch.zeros_like(on)
    forced = {
        "ScaleIntensity": lambda: scale_intensity(raw),
        "RandRotate": lambda: aug.rotate(x, type(p)(on, p.angle, off, off, p.zoom)),
        "RandFlip": lambda: aug.flip(x, type(p)(off, p.angle, on, off, p.zoom)),
        "RandZoom": lambda: aug.zoom(x, type(p)(off, p.angle, off, on, p.zoom)),
        "chain": lambda: aug(scale_intensity(raw), g),
    }
    out: dict[str, Any] = {"batch_size": batch_size, "device": str(device), "per_transform_us": {}}
    for name, fn in forced.items():
        fn()  # warm-up (kernel selection, allocator)
        times = []
        for _ in range(repeats):
            cuda_sync(device)
            a = clock()
            iters = 0
            while True:
                fn()
                iters += 1
                if device.type != "cuda" or iters >= 5:
                    break
            cuda_sync(device)
            times.append((clock() - a) / iters / batch_size * 1e6)
        s = Summary.from_values(times, "us/image")
        if name == "chain":
            out["chain_images_per_s"] = s.rate(1e6, "img/s").to_dict()
        else:
            out["per_transform_us"][name] = s.to_dict()
    return out


def quality(images_u8: np.ndarray, device: torch.device, n: int = 32, seed: int = 0) -> dict[str, Any]:
    """SSIM/PSNR of each transform's output against its input (forced to fire), identity
    checks, and the batched device chain against MONAI's transforms with the same parameters."""
    aug = BatchedAugment2D().to(device)
    n = min(n, len(images_u8))
    x = scale_intensity(torch.from_numpy(images_u8[:n]).unsqueeze(1).to(device))
    g = torch.Generator(device=device).manual_seed(seed)
    p = aug.sample(n, device, g)
    on = torch.ones(n, dtype=torch.bool, device=device)
    off = torch.zeros_like(on)
    P = type(p)
    variants = {
        "RandRotate": P(on, p.angle, off, off, p.zoom),
        "RandFlip": P(off, p.angle, on, off, p.zoom),
        "RandZoom": P(off, p.angle, off, on, p.zoom),
        "chain": p,
    }
    per: dict[str, Any] = {}
    for name, params in variants.items():
        y = aug.apply(x, params).cpu()
        xs = x.cpu()
        ps = [psnr(y[i, 0], xs[i, 0]) for i in range(n)]
        per[name] = {
            "ssim_vs_input": float(np.mean([ssim(y[i, 0], xs[i, 0]) for i in range(n)])),
            "psnr_vs_input_db": float(np.mean([v for v in ps if v is not None])) if any(v is not None for v in ps)
            else None,
        }
        # device vs MONAI reference with the same parameters
        params_cpu = P(*(t.cpu() for t in (params.do_rotate, params.angle, params.do_flip, params.do_zoom,
                                           params.zoom)))
        ref = torch.stack([monai_reference(xs[i, 0].numpy(), params_cpu, i) for i in range(n)])
        diff = (y - ref).abs()
        per[name]["vs_monai_max_abs"] = float(diff.max())
        per[name]["vs_monai_mean_abs"] = float(diff.mean())
        per[name]["vs_monai_psnr_db"] = psnr(y, ref)
    zero = torch.zeros(n, device=device)
    identity = {
        "rotate_0_deg_max_abs": float((aug.apply(x, P(on, zero, off, off, p.zoom)) - x).abs().max()),
        "flip_twice_max_abs": float((aug.apply(aug.apply(x, P(off, zero, on, off, p.zoom)),
                                               P(off, zero, on, off, p.zoom)) - x).abs().max()),
        "zoom_1_max_abs": float((aug.apply(x, P(off, zero, off, on, torch.ones(n, device=device))) - x).abs().max()),
        "scale_intensity_idempotent_max_abs": float((scale_intensity(x) - x).abs().max()),
    }
    gallery_n = min(6, n)
    chain_out = aug.apply(x, p).cpu()
    gallery = {
        "input_u8": (x[:gallery_n, 0].cpu().clamp(0, 1) * 255).round().to(torch.uint8).tolist(),
        "output_u8": (chain_out[:gallery_n, 0].clamp(0, 1) * 255).round().to(torch.uint8).tolist(),
        "params": [{"rotate": bool(p.do_rotate[i]), "angle_deg": float(p.angle[i]) * 180 / np.pi,
                    "flip": bool(p.do_flip[i]), "zoom": bool(p.do_zoom[i]), "zoom_factor": float(p.zoom[i])}
                   for i in range(gallery_n)],
    }
    return {"n_images": n, "per_transform": per, "identity_checks": identity, "gallery": gallery}
