"""Key numbers of the augmentation section for the report."""

from __future__ import annotations

from common.records import Record


def key_numbers(a: Record) -> list[tuple[str, str]]:
    return [("Augmentation chain", f"{a.data['cpu_per_sample']['chain_images_per_s']['median']:.0f} img/s "
             f"per sample on 1 CPU thread vs {a.data['device_batched']['chain_images_per_s']['median']:.0f} "
             f"img/s batched ({a.data['chain_speedup_batched_vs_per_sample']:.0f}x); max |Δ| vs MONAI "
             f"{a.data['quality']['per_transform']['chain']['vs_monai_max_abs']:.1e}")]
