"""MONAI's DenseNet121 with a forward that never re-concatenates a dense block.

MONAI's dense layer returns ``torch.cat([x, new], 1)``: every layer copies every feature map
of its block into a fresh buffer, so a block of L layers moves O(L^2) feature maps through
memory just to concatenate them, and each layer's batch norm then re-reads that copy to
recompute statistics that did not change (the statistics of a channel are the same for every
layer that reads it). On a GPU at MedNIST's 64x64 the training step is bound by that traffic.

:class:`ListDenseNet121` is the same network -- same modules, parameters, initialisation,
``state_dict`` and function -- with a forward that keeps each block's features as a list:

- each feature map's batch statistics are computed once, when it is produced, and every
  batch norm that reads it takes them from there (running statistics are updated exactly as
  ``nn.BatchNorm2d`` does);
- the concatenation is written as ``torch.cat`` feeding straight into the normalisation, which
  inductor (with ``force_pointwise_cat``) turns into masked loads inside the normalisation
  kernel instead of a copy, and a selective activation checkpoint recomputes it in the
  backward from the parts (kept anyway) rather than writing it out to be saved; the
  normalised output, which the next convolution's backward needs, is saved as before;
- a transition pools before its 1x1 convolution rather than after: average pooling and a
  bias-free 1x1 convolution are both linear and commute, and pooling first gives the
  convolution a quarter of the pixels.

Eager, it computes the same as MONAI's forward up to floating-point rounding (the tests
compare outputs, gradients and running statistics); it pays only under ``torch.compile`` on a
GPU. On a CPU, inductor's C++ masked loads make it slower than MONAI's forward (docs/PERFORMANCE.md).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from monai.networks.nets import DenseNet121
from monai.networks.nets.densenet import _DenseBlock, _Transition
from torch.utils.checkpoint import CheckpointPolicy, checkpoint, create_selective_checkpoint_contexts


def compile_options() -> dict:
    """The inductor options this forward needs to pay: a concatenation feeding the
    normalisation is generated as masked loads in that kernel, whatever the number of inputs
    (a block has up to 25). Empty where this torch's inductor lacks the option."""
    from torch._inductor import config as inductor_config

    return {"force_pointwise_cat": True} if hasattr(inductor_config, "force_pointwise_cat") else {}


def _wide(x: torch.Tensor) -> torch.Tensor:
    """x in fp32 if it is a 16-bit float (as batch norm computes), else as is."""
    return x.float() if x.dtype in (torch.bfloat16, torch.float16) else x


def _stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel batch mean and biased variance (at least fp32)."""
    var, mean = torch.var_mean(_wide(x), dim=(0, 2, 3), correction=0)
    return mean, var


def _norm_parts(norm: torch.nn.BatchNorm2d, parts: list[torch.Tensor],
                stats: list[tuple[torch.Tensor, torch.Tensor]] | None, relu: bool) -> torch.Tensor:
    """``norm(torch.cat(parts, 1))`` (then ReLU), from the parts' own batch statistics."""
    scale, shift = norm_affine(norm, parts, stats)
    if relu and torch.is_grad_enabled():
        # recomputed in the backward from the parts (which are kept anyway), so the
        # concatenation is never written to memory, not even to be saved for the backward
        return checkpoint(_scale_shift, scale, shift, relu, *parts, use_reentrant=False, context_fn=_keep_output)
    return _scale_shift(scale, shift, relu, *parts)


def norm_affine(norm: torch.nn.BatchNorm2d, parts: list[torch.Tensor],
                stats: list[tuple[torch.Tensor, torch.Tensor]] | None) -> tuple[torch.Tensor, torch.Tensor]:
    """(scale, shift) with ``norm(torch.cat(parts, 1)) == cat * scale + shift`` per channel, from
    the parts' batch statistics in training (updating the running statistics as
    ``nn.BatchNorm2d`` does) or the running ones in evaluation."""
    if norm.training:
        assert stats is not None
        mean = torch.cat([m for m, _ in stats])
        var = torch.cat([v for _, v in stats])
        if norm.track_running_stats:
            with torch.no_grad():
                norm.num_batches_tracked.add_(1)
                momentum = norm.momentum if norm.momentum is not None else 1.0 / float(norm.num_batches_tracked)
                n = parts[0].numel() // parts[0].shape[1]
                norm.running_mean.mul_(1 - momentum).add_(mean, alpha=momentum)
                norm.running_var.mul_(1 - momentum).add_(var * (n / max(n - 1, 1)), alpha=momentum)
    else:
        mean, var = norm.running_mean, norm.running_var
    scale = torch.rsqrt(var + norm.eps)
    if norm.affine:
        scale = scale * norm.weight
    shift = -mean * scale
    if norm.affine:
        shift = shift + norm.bias
    return scale, shift


def _scale_shift(scale: torch.Tensor, shift: torch.Tensor, relu: bool, *parts: torch.Tensor) -> torch.Tensor:
    x = torch.cat(parts, 1) if len(parts) > 1 else parts[0]
    y = (_wide(x) * scale.view(1, -1, 1, 1) + shift.view(1, -1, 1, 1)).to(x.dtype)
    return F.relu(y) if relu else y


def _save_relu(ctx, op, *args, **kwargs) -> CheckpointPolicy:
    # the normalised output feeds a convolution, whose backward needs it: keep it rather
    # than recompute it; everything before it (the concatenation above all) is recomputed
    return CheckpointPolicy.MUST_SAVE if op is torch.ops.aten.relu.default else CheckpointPolicy.PREFER_RECOMPUTE


def _keep_output():
    return create_selective_checkpoint_contexts(_save_relu)


class ListDenseNet121(DenseNet121):
    """DenseNet121 (2D) whose blocks keep their features as a list; see the module docstring."""

    def bottleneck(self, seq: torch.nn.Sequential, parts: list[torch.Tensor],
                   stats: list[tuple[torch.Tensor, torch.Tensor]] | None) -> torch.Tensor:
        """A dense layer's ``conv1(relu1(norm1(cat(parts))))``, from the parts' statistics."""
        return seq.conv1(_norm_parts(seq.norm1, parts, stats, relu=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.features
        x = f.pool0(f.relu0(f.norm0(f.conv0(x))))
        parts = [x]
        stats = [_stats(x)] if self.training else None
        for name, mod in f.named_children():
            if isinstance(mod, _DenseBlock):
                for layer in mod.children():
                    seq = layer.layers
                    h = seq.conv2(seq.relu2(seq.norm2(self.bottleneck(seq, parts, stats))))
                    if hasattr(seq, "dropout"):
                        h = seq.dropout(h)
                    parts.append(h)
                    if stats is not None:
                        stats.append(_stats(h))
            elif isinstance(mod, _Transition):
                h = _norm_parts(mod.norm, parts, stats, relu=True)
                h = mod.conv(mod.pool(h))  # pool first: both linear, so they commute; 1/4 of the conv's pixels
                parts = [h]
                stats = [_stats(h)] if self.training else None
            elif name == "norm5":
                x = _norm_parts(mod, parts, stats, relu=False)
        return self.class_layers(x)
