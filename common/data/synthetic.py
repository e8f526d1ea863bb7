"""A MedNIST-shaped synthetic set for machines without the real data: the six class
names, 64x64 grayscale JPEGs with a class-dependent anatomy-like structure (learnable),
deterministic for a seed, and marked synthetic in the manifest."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from common.data.extract import install_tree, staging_dir
from common.data.mednist import CLASS_NAMES, FOLDER, build_manifest, write_manifest
from common.errors import UserError

GENERATOR_VERSION = 1
_N = 64
MAX_PER_CLASS = 10_000  # MedNIST's largest class holds 10,000 images; more would only fill the disk
BYTES_PER_IMAGE = 4096  # a 64x64 JPEG at quality 92 takes 1-3 KiB, plus its directory entry


def _ellipse(x, y, cx, cy, rx, ry):
    return ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1.0


def _segment(x, y, x0, y0, x1, y1, width):
    """Pixels within ``width`` of the segment (x0, y0)-(x1, y1)."""
    dx, dy = x1 - x0, y1 - y0
    t = np.clip(((x - x0) * dx + (y - y0) * dy) / (dx * dx + dy * dy), 0, 1)
    return (x - x0 - t * dx) ** 2 + (y - y0 - t * dy) ** 2 <= width**2


def _abdomen_ct(x, y, r):
    img = 0.45 * _ellipse(x, y, 0, 0.05, 0.85 * r.uniform(0.9, 1.1), 0.62 * r.uniform(0.9, 1.1))
    img = np.where(_ellipse(x, y, -0.35, -0.05, 0.3, 0.25), 0.6, img)  # liver
    for side in (-1, 1):  # kidneys
        img = np.where(_ellipse(x, y, side * 0.3, 0.3, 0.1, 0.14), 0.55, img)
    return np.where(_ellipse(x, y, 0, 0.45, 0.1, 0.09), 0.95, img)  # vertebra


def _breast_mri(x, y, r):
    img = np.zeros_like(x)
    for side in (-1, 1):
        lobe = _ellipse(x, y, side * 0.42 * r.uniform(0.9, 1.1), 0.5, 0.4, 0.55) & (y > 0.05)
        img = np.where(lobe, 0.55 + 0.2 * np.sin(9 * x + 7 * y + r.uniform(0, 6)), img)
    return np.where((y > -0.05) & (y < 0.1) & (np.abs(x) < 0.95), 0.3, img)  # chest wall


def _cxr(x, y, r):
    img = 0.75 - 0.15 * y**2
    for side in (-1, 1):
        lung = _ellipse(x, y, side * 0.4, -0.05, 0.3 * r.uniform(0.9, 1.1), 0.62)
        img = np.where(lung, 0.2 + 0.08 * (np.sin(18 * y) > 0.6), img)  # ribs
    return np.where(_ellipse(x, y, 0.05, 0.3, 0.22, 0.3), 0.8, img)  # heart


def _chest_ct(x, y, r):
    img = 0.5 * _ellipse(x, y, 0, 0.05, 0.88, 0.62 * r.uniform(0.9, 1.1))
    for side in (-1, 1):
        img = np.where(_ellipse(x, y, side * 0.4, 0.0, 0.3, 0.42 * r.uniform(0.85, 1.15)), 0.05, img)  # lungs
    img = np.where(_ellipse(x, y, 0.0, -0.1, 0.14, 0.16), 0.6, img)  # heart
    return np.where(_ellipse(x, y, 0, 0.5, 0.09, 0.08), 0.95, img)  # vertebra


def _hand(x, y, r):
    img = 0.7 * _ellipse(x, y, 0, 0.45, 0.42, 0.38)  # palm
    spread = r.uniform(0.12, 0.22)
    for k, length in enumerate((0.55, 0.85, 0.95, 0.85, 0.65)):
        angle = (k - 2) * spread
        x0, y0 = (k - 2) * 0.17, 0.2
        finger = _segment(x, y, x0, y0, x0 + length * np.sin(angle), y0 - length * np.cos(angle), 0.07)
        img = np.where(finger, 0.75, img)
    return img


def _head_ct(x, y, r):
    rx, ry = 0.72 * r.uniform(0.92, 1.08), 0.85 * r.uniform(0.92, 1.08)
    img = 0.95 * _ellipse(x, y, 0, 0, rx, ry)  # skull
    img = np.where(_ellipse(x, y, 0, 0, rx - 0.08, ry - 0.08), 0.4, img)  # brain
    return np.where(_ellipse(x, y, 0, 0, 0.1, 0.2), 0.15, img)  # ventricles


_DRAW = {
    "AbdomenCT": _abdomen_ct,
    "BreastMRI": _breast_mri,
    "CXR": _cxr,
    "ChestCT": _chest_ct,
    "Hand": _hand,
    "HeadCT": _head_ct,
}


def synthetic_image(cls: str, rng: np.random.Generator) -> np.ndarray:
    """One (64, 64) uint8 image of class ``cls``: jittered, rotated, rescaled and noisy."""
    g = (np.arange(_N, dtype=np.float64) + 0.5) / _N * 2 - 1
    yy, xx = np.meshgrid(g, g, indexing="ij")
    angle = np.deg2rad(rng.uniform(-12, 12))
    scale = rng.uniform(0.9, 1.1)
    xs = (np.cos(angle) * xx + np.sin(angle) * yy) / scale + rng.uniform(-0.06, 0.06)
    ys = (-np.sin(angle) * xx + np.cos(angle) * yy) / scale + rng.uniform(-0.06, 0.06)
    img = _DRAW[cls](xs, ys, rng) * rng.uniform(0.85, 1.15)
    img = img + rng.normal(0, rng.uniform(0.02, 0.06), img.shape)
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)


def generate_synthetic(data_dir: str | os.PathLike, n_per_class: int, seed: int = 0, progress: bool = True) -> Path:
    """Write DIR/MedNIST/<class>/NNNNNN.jpeg and a manifest marked synthetic; the tree is
    staged in DIR and renamed into place once complete. Returns DIR/MedNIST."""
    import shutil

    from tqdm import tqdm

    n = int(n_per_class)
    if not 1 <= n <= MAX_PER_CLASS:
        raise UserError(f"--synthetic {n_per_class} is out of range: give 1 to {MAX_PER_CLASS:,} images per class")
    need = n * len(CLASS_NAMES) * BYTES_PER_IMAGE
    probe = Path(data_dir)
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if need > free:
        raise UserError(f"--synthetic {n} needs about {need / 2**20:.0f} MiB but {probe} has {free / 2**20:.0f} MiB "
                        "free: give a smaller count or another --data-dir")
    with staging_dir(data_dir) as tmp, tqdm(total=n * len(CLASS_NAMES), desc="synthetic", unit="img",
                                            disable=not progress) as bar:
        staged = tmp / FOLDER
        for ci, cls in enumerate(CLASS_NAMES):
            rng = np.random.default_rng([seed, ci])
            (staged / cls).mkdir(parents=True)
            for i in range(n):
                Image.fromarray(synthetic_image(cls, rng)).save(staged / cls / f"{i:06d}.jpeg", quality=92)
                bar.update()
        extra = {"n_per_class": n, "seed": int(seed), "generator_version": GENERATOR_VERSION}
        write_manifest(staged, build_manifest(staged, "synthetic", synthetic=True, extra=extra))
        return install_tree(staged, data_dir)
