"""3D volume pipeline: preprocessing (orientation, spacing, intensity scaling), 3D
augmentation per sample on the CPU (MONAI) and batched on the device, a 3D UNet trained
on patches to segment the volume's tissue classes, sliding-window inference giving
per-voxel class probabilities, and a volume rendering computed on the device."""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from common.data.volumes import Volume
from common.measure.stats import Summary
from common.measure.timing import Timer, clock, cuda_sync
from common.models import unet3d
from common.transforms import BatchedAugment3D, monai_3d_chain
from common.workloads.training import autocast_ctx


@dataclass
class Prepared:
    image: torch.Tensor  # (1, D, H, W) float in [0, 1], on the device
    label: torch.Tensor | None  # (1, D, H, W) long
    spacing: tuple[float, float, float]
    affine: np.ndarray
    stage_s: dict[str, float]
    nonfinite_voxels: int


def preprocess(vol: Volume, device: torch.device, spacing_mm: float, timer: Timer | None = None) -> Prepared:
    """Orientation to RAS, resampling to isotropic ``spacing_mm`` and percentile intensity
    scaling, with MONAI transforms running on ``device``; each stage timed (synchronized)."""
    from monai.data import MetaTensor
    from monai.transforms import Orientation, ScaleIntensityRangePercentiles, Spacing

    timer = timer or Timer(str(device))
    img = np.asarray(vol.image, dtype=np.float32)
    nonfinite = int((~np.isfinite(img)).sum())
    if nonfinite:  # bad voxels are converted, counted and reported, never fatal
        img = np.nan_to_num(img, nan=0.0, posinf=0.0, neginf=0.0)
    stages: dict[str, float] = {}
    with timer.window("vol_h2d"):
        x = MetaTensor(torch.from_numpy(img)[None], affine=torch.as_tensor(vol.affine, dtype=torch.float64)).to(device)
        y = None
        if vol.label is not None:
            y = MetaTensor(torch.from_numpy(vol.label.astype(np.float32))[None],
                           affine=torch.as_tensor(vol.affine, dtype=torch.float64)).to(device)
    stages["vol_h2d"] = timer.spans[-1].duration
    with timer.window("orientation"):
        orient = Orientation(axcodes="RAS")
        x = orient(x)
        y = orient(y) if y is not None else None
    stages["orientation"] = timer.spans[-1].duration
    with timer.window("spacing"):
        x = Spacing(pixdim=(spacing_mm,) * 3, mode="bilinear")(x)
        y = Spacing(pixdim=(spacing_mm,) * 3, mode="nearest")(y) if y is not None else None
    stages["spacing"] = timer.spans[-1].duration
    with timer.window("intensity"):
        x = ScaleIntensityRangePercentiles(lower=0.5, upper=99.5, b_min=0.0, b_max=1.0, clip=True)(x)
    stages["intensity"] = timer.spans[-1].duration
    affine = np.asarray(x.affine.cpu().numpy() if hasattr(x, "affine") else vol.affine)
    img_t = x.as_tensor().float().contiguous()
    lab_t = y.as_tensor().round().long().contiguous() if y is not None else None
    return Prepared(img_t, lab_t, (spacing_mm,) * 3, affine, stages, nonfinite)


# ------------------------------------------------------------------------------------------
# Patches and 3D augmentation
# ------------------------------------------------------------------------------------------

def sample_patches(prep: Prepared, n: int, size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` random patches (2/3 centred on foreground, 1/3 anywhere, as MONAI's
    RandCropByPosNegLabel with pos=2, neg=1). Returns (images (n,1,s,s,s), labels (n,1,s,s,s))."""
    img, lab = prep.image, prep.label
    dev = img.device
    shape = torch.tensor(img.shape[1:])
    size_t = torch.tensor([min(size, int(s)) for s in img.shape[1:]])
    if not hasattr(prep, "_fg"):
        fg = torch.nonzero(lab[0] > 0) if lab is not None else torch.zeros((0, 3), dtype=torch.long, device=dev)
        prep._fg = fg.cpu()  # type: ignore[attr-defined]
    fg = prep._fg  # type: ignore[attr-defined]
    u = torch.rand(n, 4, generator=generator)
    xs, ys = [], []
    for i in range(n):
        if len(fg) and u[i, 0] < 2 / 3:
            c = fg[int(u[i, 1] * len(fg)) % len(fg)]
        else:
            c = (torch.rand(3, generator=generator) * shape).long()
        start = torch.clamp(c - size_t // 2, min=torch.zeros(3, dtype=torch.long), max=shape - size_t)
        sl = tuple(slice(int(a), int(a) + int(s)) for a, s in zip(start, size_t))
        xs.append(img[(slice(None),) + sl])
        ys.append(lab[(slice(None),) + sl] if lab is not None else torch.zeros_like(img[(slice(None),) + sl]).long())
    x, y = torch.stack(xs), torch.stack(ys)
    if x.shape[-3:] != (size, size, size):  # volume smaller than the patch: pad
        pad = []
        for s in reversed(x.shape[-3:]):
            pad += [0, size - s]
        x = F.pad(x, pad)
        y = F.pad(y, pad)
    return x, y


def augmentation_timing(prep: Prepared, device: torch.device, patch: int, n: int, repeats: int,
                        seed: int = 0) -> dict[str, Any]:
    """Per-transform milliseconds per patch: MONAI per sample on the CPU (one thread) against
    the batched chain on ``device``."""
    g = torch.Generator().manual_seed(seed)
    x, _ = sample_patches(prep, n, patch, g)
    x_cpu = x.cpu()
    chain = monai_3d_chain(seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    cpu: dict[str, list[float]] = {k: [] for k in chain}
    try:
        for _ in range(repeats):
            acc = dict.fromkeys(chain, 0.0)
            for i in range(n):
                s = x_cpu[i]
                for name, t in chain.items():
                    a = clock()
                    s = t(s)
                    acc[name] += clock() - a
            for name in chain:
                cpu[name].append(acc[name] / n * 1e3)
    finally:
        torch.set_num_threads(threads)
    aug = BatchedAugment3D()
    gd = torch.Generator(device=device).manual_seed(seed)
    aug(x, None, gd)  # warm-up
    dev: dict[str, list[float]] = {k: [] for k in chain}
    for _ in range(repeats):
        stages: dict[str, float] = {}
        cuda_sync(device)
        aug(x, None, gd, stages=stages)
        for name in chain:
            dev[name].append(stages[name] / n * 1e3)
    return {
        "patch": patch, "patches": n,
        "cpu_monai_ms_per_patch": {k: Summary.from_values(v, "ms/patch").to_dict() for k, v in cpu.items()},
        "device_batched_ms_per_patch": {k: Summary.from_values(v, "ms/patch").to_dict() for k, v in dev.items()},
    }


# ------------------------------------------------------------------------------------------
# Training and sliding-window inference
# ------------------------------------------------------------------------------------------

def train_unet(prep: Prepared, device: torch.device, steps: int, patch: int, batch: int, channels, precision: str,
               lr: float = 3e-3, seed: int = 0, timer: Timer | None = None,
               progress=None) -> tuple[torch.nn.Module, dict]:
    """Train a 3D UNet on random patches of the volume's own tissue labels for ``steps``
    steps (DiceCE loss, Adam). Stages: sample, augment, forward, backward, optimizer."""
    from monai.losses import DiceCELoss

    if prep.label is None:
        raise ValueError("training needs a label map")
    n_classes = int(prep.label.max()) + 1
    torch.manual_seed(seed)
    model = unet3d(max(n_classes, 2), channels).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True)
    timer = timer or Timer(str(device))
    g = torch.Generator().manual_seed(seed)
    gd = torch.Generator(device=device).manual_seed(seed)
    aug = BatchedAugment3D()
    losses, step_s = [], []
    stage_totals: dict[str, list[float]] = {k: [] for k in ("sample", "augment", "forward", "backward", "optimizer")}
    for step in range(steps):
        before = len(timer.spans)
        ctx = timer.warmup() if step == 0 else contextlib.nullcontext()
        with ctx, timer.window("unet_step", step=step):
            with timer.window("sample", step=step):
                x, y = sample_patches(prep, batch, patch, g)
            with timer.window("augment", step=step):
                x, y = aug(x, y, gd)
            with timer.window("forward", step=step):
                with autocast_ctx(device, precision):
                    out = model(x)
                loss = loss_fn(out.float(), y)
            with timer.window("backward", step=step):
                loss.backward()
            with timer.window("optimizer", step=step):
                opt.step()
                opt.zero_grad(set_to_none=True)
        spans = timer.spans[before:]
        if step > 0:
            for s in spans[:-1]:
                stage_totals[s.name].append(s.duration)
            step_s.append(spans[-1].duration)
        losses.append(float(loss.detach()))
        if progress is not None:
            progress.update(1)
    info = {
        "steps": steps, "batch": batch, "patch": patch, "lr": lr, "precision": precision, "classes": n_classes,
        "losses": losses,
        "step_s": Summary.from_values(step_s, "s").to_dict() if step_s else None,
        "stage_s": {k: Summary.from_values(v, "s").to_dict() for k, v in stage_totals.items() if v},
        "warmup_step_s": timer.durations("unet_step", include_warmup=True)[0],
        "parameters": sum(p.numel() for p in model.parameters()),
    }
    return model, info


@torch.no_grad()
def sliding_window(model: torch.nn.Module, image: torch.Tensor, patch: int, precision: str,
                   sw_batch: int = 4, overlap: float = 0.25) -> tuple[torch.Tensor, float]:
    """Per-voxel class probabilities (C, D, H, W) for the whole volume, and the seconds it took."""
    from monai.inferers import sliding_window_inference

    model.eval()
    dev = image.device
    cuda_sync(dev)
    a = clock()
    with autocast_ctx(dev, precision):
        logits = sliding_window_inference(image[None], (patch,) * 3, sw_batch, model, overlap=overlap,
                                          mode="gaussian")
    probs = torch.softmax(torch.as_tensor(logits).float(), dim=1)[0]
    cuda_sync(dev)
    model.train()
    return probs, clock() - a


# ------------------------------------------------------------------------------------------
# Rendering
# ------------------------------------------------------------------------------------------

TISSUE_RGB = torch.tensor([[0.0, 0.0, 0.0], [0.95, 0.55, 0.35], [0.95, 0.95, 0.85]])


@torch.no_grad()
def render(image: torch.Tensor, seg: torch.Tensor | None, azimuths_deg: list[float], size: int = 160
           ) -> tuple[np.ndarray, list[float]]:
    """Emission-absorption volume rendering on the volume's device: rotate the volume about
    the vertical axis (grid_sample), map intensity to opacity and tissue class to colour,
    composite front to back. Returns (views (n, size, size, 3) in [0,1], seconds per view)."""
    dev = image.device
    vol = image[None].float()  # (1, 1, D, H, W)
    colors = TISSUE_RGB.to(dev)
    if seg is not None:
        rgb = colors[seg.clamp(0, len(colors) - 1)].permute(3, 0, 1, 2)[None].float()  # (1, 3, D, H, W)
    else:
        rgb = vol.expand(1, 3, *vol.shape[2:])
    views, secs = [], []
    for az in azimuths_deg:
        cuda_sync(dev)
        a = clock()
        t = math.radians(az)
        c, s = math.cos(t), math.sin(t)
        # volume axes after RAS orientation: (x right, y anterior, z superior) = grid (D, H, W);
        # grid coordinates are ordered (W, H, D) = (z, y, x). Rotate about z (superior axis).
        theta = torch.tensor([[[1, 0, 0, 0], [0, c, s, 0], [0, -s, c, 0]]], dtype=torch.float32, device=dev)
        grid = F.affine_grid(theta, [1, 1, size, size, size], align_corners=False)
        v = F.grid_sample(vol, grid, mode="bilinear", padding_mode="zeros", align_corners=False)[0, 0]
        col = F.grid_sample(rgb, grid, mode="nearest", padding_mode="zeros", align_corners=False)[0]
        alpha = torch.clamp((v - 0.15) * 0.25, 0.0, 1.0)  # opacity transfer function
        # composite along y from anterior to posterior (a view from the front)
        alpha_y = alpha.flip(1)
        col_y = col.flip(2)
        trans = torch.cumprod(torch.cat([torch.ones_like(alpha_y[:, :1]), 1 - alpha_y[:, :-1]], 1), 1)
        weight = trans * alpha_y
        shade = 0.35 + 0.65 * v.flip(1)
        img = (weight[None] * col_y * shade[None]).sum(2)  # (3, x, z)
        img = torch.clamp(img, 0, 1).permute(2, 1, 0).flip(0)  # (z up, x, 3)
        cuda_sync(dev)
        secs.append(clock() - a)
        views.append(img.cpu().numpy())
    return np.stack(views), secs
