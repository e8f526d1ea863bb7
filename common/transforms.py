"""Transform chains.

* The MONAI MedNIST tutorial chain, per sample (``tutorial_train_transforms``), with a
  ``TimedCompose`` that records how long each transform took, so that worker-side stages
  (io_decode, preprocess, augment) can be measured.
* ``BatchedAugment2D``: the same random chain (RandRotate ±15°, RandFlip axis 0, RandZoom
  0.9-1.1, each p=0.5) applied to a whole batch at once on any device. Given the same random
  parameters it reproduces MONAI's outputs to float rounding: rotation is MONAI's own
  affine resampling (bilinear, border, align_corners=False) as one ``grid_sample`` per
  batch; zoom is MONAI's area interpolation plus edge-pad / centre-crop, which is linear and
  separable, so each zoom level is a 64x64 matrix applied as ``M @ x @ M.T`` by ``bmm``.
* ``BatchedAugment3D``: the volume pipeline's 3D chain (RandAffine, RandGaussianNoise, RandFlip) on a
  batch of patches on any device, and ``monai_3d_chain``, its per-sample MONAI reference.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from common.measure.timing import clock, cuda_sync

# stage of each tutorial transform, in order
TUTORIAL_STAGES = {
    "LoadImage": "io_decode",
    "EnsureChannelFirst": "preprocess",
    "ScaleIntensity": "preprocess",
    "RandRotate": "augment",
    "RandFlip": "augment",
    "RandZoom": "augment",
}
ROTATE_RANGE = math.pi / 12  # ±15 degrees, as the tutorial
ZOOM_RANGE = (0.9, 1.1)
PROB = 0.5


def _load_image():
    """The tutorial's LoadImage, reading with PIL and converting as the decode-and-check rule
    does (``common.data.imagecheck.to_grayscale``: 8-bit non-grayscale modes -> L), so a
    converted file gives the recipe the same pixels as every other data path."""
    from monai.data import PILReader
    from monai.transforms import LoadImage

    from common.data.imagecheck import to_grayscale

    return LoadImage(reader=PILReader(converter=to_grayscale), image_only=True)


def tutorial_train_transforms(load: bool = True) -> list:
    """The MONAI MedNIST tutorial's training chain. ``load=False`` drops LoadImage and
    EnsureChannelFirst, for inputs that are already decoded (1, H, W) tensors."""
    from monai.transforms import EnsureChannelFirst, RandFlip, RandRotate, RandZoom, ScaleIntensity

    chain: list = [_load_image(), EnsureChannelFirst()] if load else []
    chain += [
        ScaleIntensity(),
        RandRotate(range_x=ROTATE_RANGE, prob=PROB, keep_size=True),
        RandFlip(spatial_axis=0, prob=PROB),
        RandZoom(min_zoom=ZOOM_RANGE[0], max_zoom=ZOOM_RANGE[1], prob=PROB),
    ]
    return chain


def tutorial_val_transforms(load: bool = True) -> list:
    from monai.transforms import EnsureChannelFirst, ScaleIntensity

    chain: list = [_load_image(), EnsureChannelFirst()] if load else []
    return chain + [ScaleIntensity()]


class TimedCompose:
    """Apply transforms in order and record seconds per transform (``last_times``)."""

    def __init__(self, transforms: Sequence[Callable], seed: int | None = None):
        self.transforms = list(transforms)
        self.names = [type(t).__name__ for t in self.transforms]
        self.last_times: list[float] = [0.0] * len(self.transforms)
        if seed is not None:
            self.set_random_state(seed)

    def set_random_state(self, seed: int) -> None:
        for i, t in enumerate(self.transforms):
            if hasattr(t, "set_random_state"):
                t.set_random_state(seed=seed + i)

    def __call__(self, x: Any) -> Any:
        for i, t in enumerate(self.transforms):
            t0 = time.perf_counter()
            x = t(x)
            self.last_times[i] = time.perf_counter() - t0
        return x


def scale_intensity(x: torch.Tensor) -> torch.Tensor:
    """MONAI ScaleIntensity (min-max to [0, 1] per image) on a batch (B, C, H, W) of any dtype.
    A constant image becomes zeros, as MONAI's rescale_array does."""
    x = x.float()
    flat = x.flatten(1)
    lo = flat.amin(dim=1).view(-1, *([1] * (x.dim() - 1)))
    hi = flat.amax(dim=1).view(-1, *([1] * (x.dim() - 1)))
    span = hi - lo
    return torch.where(span > 0, (x - lo) / torch.where(span > 0, span, torch.ones_like(span)), torch.zeros_like(x))


def zoom_matrix(n: int, s: int) -> torch.Tensor:
    """The (n, n) matrix of MONAI Zoom along one axis of length n zoomed to s = floor(n*z):
    area interpolation (adaptive average pooling), then centre crop (s > n) or edge pad (s < n)."""
    a = F.adaptive_avg_pool1d(torch.eye(n, dtype=torch.float64)[None], s)[0].T  # (s, n)
    if s >= n:
        start = (s - n) // 2
        return a[start:start + n].float()
    before = (n - s) // 2
    idx = torch.clamp(torch.arange(n) - before, 0, s - 1)
    return a[idx].float()


@dataclass
class AugParams:
    """Random parameters of one batch: which transforms fire and their values."""

    do_rotate: torch.Tensor  # (B,) bool
    angle: torch.Tensor  # (B,) radians
    do_flip: torch.Tensor  # (B,) bool
    do_zoom: torch.Tensor  # (B,) bool
    zoom: torch.Tensor  # (B,) factor


class BatchedAugment2D(torch.nn.Module):
    """The tutorial's random chain for a batch (B, 1, H, W) of float images on any device.
    Random numbers come from torch's generator of that device, so the module can be
    captured in a CUDA graph."""

    def __init__(self, height: int = 64, width: int = 64, rotate_range: float = ROTATE_RANGE,
                 zoom_range: tuple[float, float] = ZOOM_RANGE, prob: float = PROB):
        super().__init__()
        self.h, self.w = height, width
        self.rotate_range, self.zoom_range, self.prob = rotate_range, zoom_range, prob
        self.min_size_h = int(math.floor(height * zoom_range[0]))
        self.min_size_w = int(math.floor(width * zoom_range[0]))
        max_h = int(math.floor(height * zoom_range[1]))
        max_w = int(math.floor(width * zoom_range[1]))
        self.register_buffer("zh", torch.stack([zoom_matrix(height, s) for s in range(self.min_size_h, max_h + 1)]))
        self.register_buffer("zw", torch.stack([zoom_matrix(width, s) for s in range(self.min_size_w, max_w + 1)]))

    def sample(self, n: int, device: torch.device | str, generator: torch.Generator | None = None) -> AugParams:
        u = torch.rand(n, 5, device=device, generator=generator)
        lo, hi = self.zoom_range
        return AugParams(
            do_rotate=u[:, 0] < self.prob,
            angle=(u[:, 1] * 2 - 1) * self.rotate_range,
            do_flip=u[:, 2] < self.prob,
            do_zoom=u[:, 3] < self.prob,
            zoom=lo + u[:, 4] * (hi - lo),
        )

    def rotate(self, x: torch.Tensor, p: AugParams) -> torch.Tensor:
        """MONAI Rotate (bilinear, border, align_corners=False, about the centre) where do_rotate."""
        b = x.shape[0]
        angle = torch.where(p.do_rotate, p.angle, torch.zeros_like(p.angle))
        c, s = torch.cos(angle), torch.sin(angle)
        zero = torch.zeros_like(c)
        theta = torch.stack([torch.stack([c, s, zero], 1), torch.stack([-s, c, zero], 1)], 1)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        rotated = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
        return torch.where(p.do_rotate.view(b, 1, 1, 1), rotated, x)

    def flip(self, x: torch.Tensor, p: AugParams) -> torch.Tensor:
        """MONAI Flip(spatial_axis=0): the rows, where do_flip."""
        return torch.where(p.do_flip.view(x.shape[0], 1, 1, 1), x.flip(-2), x)

    def zoom(self, x: torch.Tensor, p: AugParams) -> torch.Tensor:
        """MONAI Zoom (area, keep_size with edge pad / centre crop) where do_zoom."""
        b = x.shape[0]
        size_h = torch.floor(self.h * p.zoom).long().clamp(self.min_size_h, self.min_size_h + self.zh.shape[0] - 1)
        size_w = torch.floor(self.w * p.zoom).long().clamp(self.min_size_w, self.min_size_w + self.zw.shape[0] - 1)
        mh = self.zh[size_h - self.min_size_h]  # (B, H, H)
        mw = self.zw[size_w - self.min_size_w]  # (B, W, W)
        ch = x.shape[1]
        flat = x.reshape(b, ch, self.h, self.w)
        zoomed = torch.matmul(torch.matmul(mh[:, None], flat), mw[:, None].transpose(-1, -2))
        return torch.where(p.do_zoom.view(b, 1, 1, 1), zoomed, x)

    def apply(self, x: torch.Tensor, p: AugParams) -> torch.Tensor:
        dtype = x.dtype
        x = self.zoom(self.flip(self.rotate(x.float(), p), p), p)
        return x.to(dtype) if dtype.is_floating_point else x

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.apply(x, self.sample(x.shape[0], x.device, generator))


def monai_reference(image: np.ndarray, p: AugParams, index: int) -> torch.Tensor:
    """MONAI's own (deterministic) transforms applied with the batch's parameters for one
    sample: the reference that ``BatchedAugment2D`` is tested and reported against."""
    from monai.transforms import Flip, Rotate, Zoom

    x = torch.as_tensor(image, dtype=torch.float32)
    if x.dim() == 2:
        x = x[None]
    if bool(p.do_rotate[index]):
        x = Rotate(angle=float(p.angle[index]), keep_size=True, mode="bilinear", padding_mode="border",
                   align_corners=False)(x)
    if bool(p.do_flip[index]):
        x = Flip(spatial_axis=0)(x)
    if bool(p.do_zoom[index]):
        x = Zoom(zoom=float(p.zoom[index]), keep_size=True)(x)
    return torch.as_tensor(x).float()


# --- 3D: the volume pipeline's augmentation, per sample (MONAI) and batched on the device ---

ROTATE_3D = math.pi / 12  # ±15° about each axis
SCALE_3D = 0.1  # ±10 %
NOISE_STD = 0.05


def _rotation_matrices(angles: torch.Tensor) -> torch.Tensor:
    """(n, 3) Euler angles -> (n, 3, 3) rotation matrices (X then Y then Z)."""
    cx, cy, cz = torch.cos(angles).unbind(1)
    sx, sy, sz = torch.sin(angles).unbind(1)
    one, zero = torch.ones_like(cx), torch.zeros_like(cx)
    rx = torch.stack([one, zero, zero, zero, cx, -sx, zero, sx, cx], 1).view(-1, 3, 3)
    ry = torch.stack([cy, zero, sy, zero, one, zero, -sy, zero, cy], 1).view(-1, 3, 3)
    rz = torch.stack([cz, -sz, zero, sz, cz, zero, zero, zero, one], 1).view(-1, 3, 3)
    return rz @ ry @ rx


class BatchedAugment3D(torch.nn.Module):
    """RandAffine (rotation ±15° per axis, scale ±10 %), RandGaussianNoise (std 0.05) and
    RandFlip (each axis p=0.5) for a batch of patches on any device; labels follow the
    geometry with nearest-neighbour sampling."""

    def forward(self, x: torch.Tensor, y: torch.Tensor | None, generator: torch.Generator | None = None,
                stages: dict[str, float] | None = None):
        n, dev = x.shape[0], x.device
        t0 = clock()
        u = torch.rand(n, 9, device=dev, generator=generator)
        rot = _rotation_matrices((u[:, :3] * 2 - 1) * ROTATE_3D)
        scale = 1 + (u[:, 3:6] * 2 - 1) * SCALE_3D
        theta = torch.cat([rot * scale[:, None, :], torch.zeros(n, 3, 1, device=dev)], 2)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
        if y is not None:
            y = F.grid_sample(y.float(), grid, mode="nearest", padding_mode="border", align_corners=False).long()
        if stages is not None:
            cuda_sync(dev)
            t1 = clock()
            stages["RandAffine"] = stages.get("RandAffine", 0.0) + t1 - t0
            t0 = t1
        noise = torch.randn(x.shape, device=dev, generator=generator) * NOISE_STD
        x = x + noise
        if stages is not None:
            cuda_sync(dev)
            t1 = clock()
            stages["RandGaussianNoise"] = stages.get("RandGaussianNoise", 0.0) + t1 - t0
            t0 = t1
        for axis in range(3):
            flip = (u[:, 6 + axis] < 0.5).view(n, 1, 1, 1, 1)
            x = torch.where(flip, x.flip(2 + axis), x)
            if y is not None:
                y = torch.where(flip, y.flip(2 + axis), y)
        if stages is not None:
            cuda_sync(dev)
            stages["RandFlip"] = stages.get("RandFlip", 0.0) + clock() - t0
        return x, y


def monai_3d_chain(seed: int = 0) -> dict[str, Any]:
    from monai.transforms import RandAffine, RandFlip, RandGaussianNoise

    chain = {
        "RandAffine": RandAffine(prob=1.0, rotate_range=(ROTATE_3D,) * 3, scale_range=(SCALE_3D,) * 3,
                                 mode="bilinear", padding_mode="border"),
        "RandGaussianNoise": RandGaussianNoise(prob=1.0, std=NOISE_STD),
        "RandFlip": RandFlip(prob=0.5, spatial_axis=None),
    }
    for t in chain.values():
        t.set_random_state(seed)
    return chain
