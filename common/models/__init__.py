"""Network builders: DenseNet121 (2D, MedNIST tutorial) and a 3D UNet (volume pipeline)."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def densenet121(num_classes: int = 6, in_channels: int = 1, concat_free: bool = False,
                fused_blocks: bool = False, gemm_1x1: bool = False) -> torch.nn.Module:
    """MONAI's DenseNet121 (2D). ``concat_free``: the same network (parameters, initialisation,
    state_dict) with a forward that keeps dense blocks as lists (common/models/densenet_lists.py);
    ``fused_blocks``: the same again, whose dense blocks train through fused BN + ReLU + 1x1
    convolution kernels (common/models/fused_dense.py); ``gemm_1x1``: the same network whose 1x1
    convolutions run as matrix products on channels_last inputs (common/models/gemm_1x1.py)."""
    if fused_blocks:
        from common.models.fused_dense import FusedDenseNet121 as DenseNet121
    elif concat_free:
        from common.models.densenet_lists import ListDenseNet121 as DenseNet121
    else:
        from monai.networks.nets import DenseNet121

    model = DenseNet121(spatial_dims=2, in_channels=in_channels, out_channels=num_classes)
    if gemm_1x1:
        from common.models.gemm_1x1 import as_gemm_1x1

        as_gemm_1x1(model)
    return model


def unet3d(num_classes: int = 3, channels: Sequence[int] = (16, 32, 64, 128), in_channels: int = 1) -> torch.nn.Module:
    from monai.networks.nets import UNet

    channels = tuple(int(c) for c in channels)
    return UNet(spatial_dims=3, in_channels=in_channels, out_channels=num_classes, channels=channels,
                strides=(2,) * (len(channels) - 1), num_res_units=2)


def count_flops(model: torch.nn.Module, example: torch.Tensor, backward: bool = True) -> int:
    """Floating-point operations of one forward (and backward) pass on ``example``, counted
    by torch.utils.flop_counter on this model (not a constant)."""
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.train(backward)
    with FlopCounterMode(display=False) as counter:
        out = model(example)
        if backward:
            out.float().sum().backward()
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    return int(counter.get_total_flops())


# Packages MONAI imports when they are installed (its optional imports: monai.networks.nets.transchex pulls
# transformers, several nets torchvision, which pulls torch._dynamo) and that DenseNet121 does not use. On the
# lent H200 image, where both are installed, `import monai.networks.nets` took 17 s, 10 s of it for these two.
UNUSED_MONAI_EXTRAS = ("transformers", "torchvision")


def leave_out_unused_monai_extras(names: Sequence[str] = UNUSED_MONAI_EXTRAS) -> list[str]:
    """In a child process that only trains or serves DenseNet121 (not compiled): make the
    ``import`` of each of ``names`` fail at once, so MONAI's optional imports skip them. Call
    before anything imports MONAI; returns the names left out (those not imported already), which
    the caller records. Not for processes that run torch.compile (dynamo looks torchvision up)."""
    import sys

    left = [n for n in names if n not in sys.modules]
    for n in left:
        sys.modules[n] = None  # the import system raises ModuleNotFoundError for a None entry
    return left
