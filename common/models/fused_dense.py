"""DenseNet121 whose dense layers apply batch norm + ReLU inside the 1x1 convolution's loads.

In :mod:`common.models.densenet_lists` each dense layer still writes its normalised input -- all the
feature maps of its block so far, up to 1,024 channels -- to memory; the 1x1 convolution reads
it back, the backward reads it again for the weight gradient, and writes and re-reads the
gradient with respect to it for the batch-norm backward. At MedNIST's 64x64 that traffic, which
grows with the square of the block depth, is most of a training step's kernel time.

:class:`FusedDenseNet121` is the same network (same modules, parameters, initialisation,
``state_dict`` and function). In training on a GPU each dense layer's ``relu(norm1(cat)) @ W1``
is one custom operator, ``mednist_suite::bn_relu_conv1x1(maps, scale, shift, weight)``, run by
Triton kernels (:mod:`common.models.fused_kernels`) that read the block's feature maps where they lie
and normalise them in registers:

- forward: ``relu(x * scale + shift) @ W1`` tile by tile; the normalised tensor is never written;
- backward: the weight gradient normalises the maps again as it reads them; the input gradient's
  epilogue applies the ReLU mask, reduces the two per-channel sums the batch-norm backward needs
  (the gradients of ``scale`` and ``shift``) and writes ``scale * g`` per feature map.

``scale`` and ``shift`` come from each feature map's batch statistics, computed once when it is
produced (as in :mod:`common.models.densenet_lists`), so autograd takes the batch-norm backward through
the statistics and the affine parameters from there, and torch.compile compiles everything
around the operator (statistics, the bottleneck's batch norm, the 3x3 convolution, gradient
sums) as before. The model is :class:`~common.models.densenet_lists.ListDenseNet121` with only its
``bottleneck`` replaced; outside training, or without a GPU (or Triton), that is the list one.
On a CPU the kernels run only under Triton's interpreter (``TRITON_INTERPRET=1``), which the
tests use.
"""

from __future__ import annotations

import torch
from monai.networks.nets.densenet import _DenseBlock

from common.models.densenet_lists import ListDenseNet121, norm_affine
from common.models.triton_env import interpreting, triton_available  # noqa: F401 - re-exported


def _rows(t4: torch.Tensor) -> torch.Tensor:
    """[N, C, H, W] channels-last as the [N*H*W, C] matrix it is (a copy if not channels-last)."""
    n, c, h, w = t4.shape
    return t4.contiguous(memory_format=torch.channels_last).permute(0, 2, 3, 1).reshape(n * h * w, c)


def _cl_empty(n: int, c: int, h: int, w: int, like: torch.Tensor) -> torch.Tensor:
    return torch.empty_strided((n, c, h, w), (h * w * c, 1, w * c, c), device=like.device, dtype=like.dtype)


def _sm_count(device: torch.device) -> int:
    return torch.cuda.get_device_properties(device).multi_processor_count if device.type == "cuda" else 4


@torch.library.custom_op("mednist_suite::bn_relu_conv1x1", mutates_args=())
def bn_relu_conv1x1(maps: list[torch.Tensor], scale: torch.Tensor, shift: torch.Tensor,
                    weight: torch.Tensor) -> torch.Tensor:
    """conv1x1(relu(cat(maps) * scale + shift), weight): maps [N, C_i, H, W]; scale, shift [K]
    (fp32, K = sum C_i); weight [O, K] in the maps' dtype. Returns [N, O, H, W], channels-last."""
    from common.models.fused_kernels import kernels, launch

    n, _, h, w = maps[0].shape
    M = n * h * w
    n_out = weight.shape[0]
    fwd, _, _ = kernels(tuple(int(m.shape[1]) for m in maps))
    out = _cl_empty(n, n_out, h, w, maps[0])
    cfg = launch("fwd")
    fwd[(triton_cdiv(M, cfg["BM"]),)](*[_rows(m) for m in maps], scale.contiguous(), shift.contiguous(),
                                      weight.t().contiguous(), out, M, N=n_out, IEEE=weight.dtype == torch.float32,
                                      **cfg)
    return out


@bn_relu_conv1x1.register_fake
def _(maps, scale, shift, weight):
    n, _, h, w = maps[0].shape
    return _cl_empty(n, weight.shape[0], h, w, maps[0])


@torch.library.custom_op("mednist_suite::bn_relu_conv1x1_dinput", mutates_args=())
def bn_relu_conv1x1_dinput(maps: list[torch.Tensor], scale: torch.Tensor, shift: torch.Tensor, dout: torch.Tensor,
                           weight: torch.Tensor) -> list[torch.Tensor]:
    """[gradient of each map..., gradient of scale, gradient of shift] of bn_relu_conv1x1,
    given the gradient of its output."""
    from common.models.fused_kernels import kernels, launch

    n, _, h, w = maps[0].shape
    M = n * h * w
    n_out, K = weight.shape
    _, dinput, _ = kernels(tuple(int(m.shape[1]) for m in maps))
    grads = [_cl_empty(n, m.shape[1], h, w, m) for m in maps]
    cfg = launch("dinput")
    P = triton_cdiv(M, cfg["BM"])
    p1 = torch.empty((P, K), device=dout.device, dtype=torch.float32)
    p2 = torch.empty((P, K), device=dout.device, dtype=torch.float32)
    dinput[(P,)](*[_rows(m) for m in maps], *[_rows(g) for g in grads], scale.contiguous(), shift.contiguous(),
                 _rows(dout), weight.contiguous(), p1, p2, M, N=n_out, IEEE=weight.dtype == torch.float32, **cfg)
    return grads + [p2.sum(0), p1.sum(0)]


@bn_relu_conv1x1_dinput.register_fake
def _(maps, scale, shift, dout, weight):
    n, _, h, w = maps[0].shape
    return [_cl_empty(n, m.shape[1], h, w, m) for m in maps] + [scale.new_empty(scale.shape),
                                                                  shift.new_empty(shift.shape)]


@torch.library.custom_op("mednist_suite::bn_relu_conv1x1_dweight", mutates_args=())
def bn_relu_conv1x1_dweight(maps: list[torch.Tensor], scale: torch.Tensor, shift: torch.Tensor,
                            dout: torch.Tensor) -> torch.Tensor:
    """The gradient of bn_relu_conv1x1's weight, [O, K] fp32, given the gradient of its output."""
    from common.models.fused_kernels import TILES_PER_DWEIGHT_PROGRAM, kernels, launch

    n, _, h, w = maps[0].shape
    M = n * h * w
    K = int(scale.shape[0])
    n_out = dout.shape[1]
    _, _, dweight = kernels(tuple(int(m.shape[1]) for m in maps))
    cfg = launch("dweight")
    bm = cfg["BM"]
    programs_k = triton_cdiv(K // 32, TILES_PER_DWEIGHT_PROGRAM)
    splits = max(1, min(triton_cdiv(M, bm), triton_cdiv(4 * _sm_count(dout.device), programs_k)))
    rows = triton_cdiv(triton_cdiv(M, splits), bm) * bm
    splits = triton_cdiv(M, rows)
    dw = torch.zeros((K, n_out), device=dout.device, dtype=torch.float32)
    dweight[(programs_k, splits)](*[_rows(m) for m in maps], scale.contiguous(), shift.contiguous(), _rows(dout), dw,
                                  M, rows, N=n_out, IEEE=dout.dtype == torch.float32, **cfg)
    return dw.t().contiguous()


@bn_relu_conv1x1_dweight.register_fake
def _(maps, scale, shift, dout):
    return scale.new_empty((dout.shape[1], scale.shape[0]))


def triton_cdiv(a: int, b: int) -> int:
    return -(-a // b)


def _setup(ctx, inputs, output):
    maps, scale, shift, weight = inputs
    ctx.n = len(maps)
    ctx.save_for_backward(*maps, scale, shift, weight)


def _backward(ctx, dout):
    *maps, scale, shift, weight = ctx.saved_tensors
    out = bn_relu_conv1x1_dinput(maps, scale, shift, dout, weight)
    dw = bn_relu_conv1x1_dweight(maps, scale, shift, dout)
    return list(out[:ctx.n]), out[ctx.n], out[ctx.n + 1], dw.to(weight.dtype)


bn_relu_conv1x1.register_autograd(_backward, setup_context=_setup)


class FusedDenseNet121(ListDenseNet121):
    """DenseNet121 (2D) whose dense layers' BN + ReLU + 1x1 convolution run as one fused
    operator in training; see the module docstring."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._triton = triton_available()[0]
        self._precompiled: set[torch.dtype] = set()
        for block in self.features.children():
            if isinstance(block, _DenseBlock):
                for layer in block.children():
                    if hasattr(layer.layers, "dropout"):
                        raise ValueError("FusedDenseNet121 does not implement dropout (dropout_prob must be 0)")

    def layer_inputs(self) -> list[tuple[int, ...]]:
        """The channel counts of the feature maps each dense layer reads, layer by layer."""
        out = []
        for block in self.features.children():
            if isinstance(block, _DenseBlock):
                layers = list(block.children())
                c0 = layers[0].layers.norm1.num_features
                growth = layers[0].layers.conv2.out_channels
                out += [(c0,) + (growth,) * i for i in range(len(layers))]
        return out

    def precompile(self, dtype: torch.dtype) -> dict | None:
        """Compile the fused kernels of every layer in parallel before the first step (on a GPU;
        at first use they would compile one after another). Returns what it did, or None."""
        if not (self._triton and torch.cuda.is_available()) or interpreting() or dtype in self._precompiled:
            return None
        from common.models.fused_kernels import precompile

        bottleneck = next(layer for b in self.features.children() if isinstance(b, _DenseBlock)
                          for layer in b.children()).layers.conv1.out_channels
        done = precompile(self.layer_inputs(), dtype, bottleneck)
        self._precompiled.add(dtype)
        return done

    def fused_active(self, x: torch.Tensor) -> bool:
        return (self.training and torch.is_grad_enabled() and self._triton
                and (x.is_cuda or (x.device.type == "cpu" and interpreting())))

    def bottleneck(self, seq, parts, stats):
        """The fused operator in place of norm1 -> relu1 -> conv1 where it runs (see fused_active)."""
        if not self.fused_active(parts[0]):
            return super().bottleneck(seq, parts, stats)
        scale, shift = norm_affine(seq.norm1, parts, stats)  # fp32, from fp32 statistics
        w1 = seq.conv1.weight
        return bn_relu_conv1x1(parts, scale, shift, w1.reshape(w1.shape[0], -1).to(parts[0].dtype))
