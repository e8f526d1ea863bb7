"""Image quality metrics for augmentation and device-vs-reference comparisons."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def psnr(a: torch.Tensor, b: torch.Tensor, data_range: float = 1.0) -> float | None:
    """Peak signal-to-noise ratio in dB; ``None`` for identical inputs (infinite PSNR)."""
    mse = float(torch.mean((a.double() - b.double()) ** 2))
    if mse == 0.0:
        return None
    return 10.0 * math.log10(data_range**2 / mse)


def _gauss(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] @ g[None, :])[None, None]


def ssim(a: torch.Tensor, b: torch.Tensor, data_range: float = 1.0) -> float:
    """Mean SSIM (Wang et al. 2004; Gaussian window 11, sigma 1.5) of two (H, W) or
    (N, 1, H, W) images."""
    a = a.double().reshape(-1, 1, *a.shape[-2:])
    b = b.double().reshape(-1, 1, *b.shape[-2:])
    w = _gauss().to(a.device)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_a, mu_b = F.conv2d(a, w), F.conv2d(b, w)
    saa = F.conv2d(a * a, w) - mu_a**2
    sbb = F.conv2d(b * b, w) - mu_b**2
    sab = F.conv2d(a * b, w) - mu_a * mu_b
    num = (2 * mu_a * mu_b + c1) * (2 * sab + c2)
    den = (mu_a**2 + mu_b**2 + c1) * (saa + sbb + c2)
    return float((num / den).mean())


def dice(pred: torch.Tensor, ref: torch.Tensor, label: int) -> float | None:
    """Dice of one class between two integer label maps; None where the class is absent in both."""
    p, r = pred == label, ref == label
    denom = int(p.sum()) + int(r.sum())
    if denom == 0:
        return None
    return 2.0 * int((p & r).sum()) / denom
