"""DenseNet121's 1x1 convolutions as matrix products (``Levers.gemm_1x1``).

A 1x1 convolution with stride 1 and no groups is a matrix product over the channels:
on an NHWC (channels_last) tensor ``x`` of shape (N, C, H, W), ``conv1x1(x, w)`` equals
``x.permute(0, 2, 3, 1) @ w.view(C_out, C).T`` permuted back, with no copy on either side.
DenseNet121 at 64x64 has 61 different 1x1 shapes (every dense layer's input grows by 32
channels) and only 5 other convolution shapes. A fresh process builds a cuDNN plan for each
shape, forward and both backward passes, on its first step (~180 plans; cuDNN keeps them per
process and per thread, not on disk), whereas cuBLAS picks a matrix-product kernel per shape
from a heuristic. The network, its parameters, initialisation and state_dict are unchanged:
only the modules' class changes, in place. On an NCHW tensor the module runs the convolution."""

from __future__ import annotations

import torch
import torch.nn.functional as F


class GemmConv1x1(torch.nn.Conv2d):
    """A ``torch.nn.Conv2d`` with a 1x1 kernel, stride 1, no padding, dilation 1 and one
    group, computed as a matrix product where its input is channels_last."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) and x.shape[1] > 1:
            w = self.weight.view(self.out_channels, self.in_channels)
            return F.linear(x.permute(0, 2, 3, 1), w, self.bias).permute(0, 3, 1, 2)
        return super().forward(x)


def is_plain_1x1(m: torch.nn.Module) -> bool:
    return (type(m) is torch.nn.Conv2d and m.kernel_size == (1, 1) and m.stride == (1, 1)
            and m.padding in ((0, 0), "valid") and m.dilation == (1, 1) and m.groups == 1
            and m.padding_mode == "zeros")


def as_gemm_1x1(model: torch.nn.Module) -> int:
    """Turn every plain 1x1 ``Conv2d`` of ``model`` into a ``GemmConv1x1`` in place (same
    parameters, same state_dict); returns how many."""
    n = 0
    for m in model.modules():
        if is_plain_1x1(m):
            m.__class__ = GemmConv1x1
            n += 1
    return n
