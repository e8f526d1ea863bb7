"""augmentation_analysis/: the tutorial chain per transform, per sample with MONAI on one
CPU core against batched on the analysed device; throughput; quality; gallery."""

from __future__ import annotations

from typing import Any

from common.analysis.context import Context
from common.workloads import augmentation as aug

NAME = "augmentation_analysis"


def measure(ctx: Context) -> dict[str, Any]:
    s = ctx.settings
    data = ctx.data
    paths, _ = data.train_paths_labels()
    images, _ = data.arrays("train")
    n = s.augmentation_images
    out: dict[str, Any] = {"dataset_synthetic": bool(data.source.get("synthetic"))}
    out["cpu_per_sample"] = aug.cpu_per_sample(paths[:: max(1, len(paths) // n)][:n], repeats=max(2, s.repeats // 2),
                                               seed=s.seed)
    batch = max(s.batch_size, 256) if ctx.kind == "cuda" else s.batch_size
    out["device_batched"] = aug.device_batched(images, ctx.device, batch, repeats=s.repeats, seed=s.seed)
    cpu_rate = out["cpu_per_sample"]["chain_images_per_s"]["median"]
    dev_rate = out["device_batched"]["chain_images_per_s"]["median"]
    out["chain_speedup_batched_vs_per_sample"] = dev_rate / cpu_rate
    out["quality"] = aug.quality(images, ctx.device, n=s.augmentation_quality_images, seed=s.seed)
    out["tolerance_vs_monai"] = 1e-4
    return out
