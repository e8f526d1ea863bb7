"""The one rule for a device's fast precision: bf16 where the device computes it natively (a GPU
with bf16; a CPU with AVX512-BF16 or AMX, as ``common.workloads.ladder.bf16_ok`` decides), else
fp32. The pipeline's device-resident configuration, the performance sweep's base, the 3D volume
section and the ladder's bf16 rung all follow it."""

from __future__ import annotations

import torch

from common.workloads.levers import Levers


def fast_precision(device: torch.device) -> tuple[str, str | None]:
    """("bf16", None) where bf16 is native on ``device``, else ("fp32", why not bf16)."""
    from common.workloads.ladder import bf16_ok

    ok, why = bf16_ok(device)
    return ("bf16", None) if ok else ("fp32", why)


def fast_levers(device: torch.device, batch: int) -> Levers:
    """The device-resident pipeline in the device's fast precision (channels-last on a GPU)."""
    return Levers("device_resident", fast_precision(device)[0], channels_last=device.type == "cuda", batch_size=batch)
