"""DenseNet121 whose dense blocks apply batch norm + ReLU inside the 1x1 convolution's loads.

In :mod:`common.densenet_lists` each dense layer still writes its normalised input -- all the
feature maps of its block so far, up to 1,024 channels -- to memory, the 1x1 convolution reads
it back, the backward reads it again for the weight gradient and writes and re-reads the
gradient of it for the batch-norm backward. At MedNIST's 64x64 that traffic, which grows with
the square of the block depth, is most of a training step's kernel time.

:class:`FusedDenseNet121` is the same network (same modules, parameters, initialisation,
``state_dict`` and function) whose dense blocks, in training on a GPU, run as one autograd
function over a block buffer (every feature map of the block, channels-last, side by side):

- forward, per layer: one Triton kernel ``relu(x * s + t) @ W1`` that reads the block's
  feature maps once and normalises them in registers (``s``, ``t``: the batch norm's scale
  and shift from each feature map's batch statistics, computed once when it is produced);
  then batch norm, ReLU and the 3x3 convolution of 128 channels as usual (cuDNN), whose 32
  output channels are written into the buffer;
- backward, per layer: one Triton kernel for the 1x1 weight gradient (normalising in
  registers again) and one for its input gradient whose epilogue applies the ReLU mask,
  reduces the batch-norm sums per channel and adds ``s * g`` into the block's gradient buffer:
  the normalised tensor and its gradient are never written.

The batch-norm backward through the shared statistics is exact: each layer's gradient with
respect to a channel's mean and variance is summed over the layers that read it and applied
once, when the backward reaches the layer that produced the channel. Running statistics are
updated as ``nn.BatchNorm2d`` does. Outside training (or without a GPU or Triton) the model runs
:class:`~common.densenet_lists.ListDenseNet121`'s forward. On a CPU the kernels run only under
Triton's interpreter (``TRITON_INTERPRET=1``), which the tests use to compare gradients with
MONAI's network in float32.
"""

from __future__ import annotations

import functools
import os

import torch
import torch.nn.functional as F
from monai.networks.nets.densenet import _DenseBlock, _Transition

from common.densenet_lists import ListDenseNet121


def triton_available() -> tuple[bool, str]:
    """(True, "") where the fused blocks can run, else (False, why)."""
    try:
        import triton  # noqa: F401
    except Exception as e:  # noqa: BLE001 - any import failure means no Triton here
        return False, f"triton is not importable ({type(e).__name__}: {e})"
    return True, ""


def _interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


@functools.cache
def _kernels():
    """The Triton kernels, defined on first use (so ``TRITON_INTERPRET`` is read then)."""
    import triton
    import triton.language as tl

    @triton.jit
    def fused_bn_relu_conv1x1_fwd(x_ptr, sx, s_ptr, t_ptr, w_ptr, out_ptr, M, K, N: tl.constexpr,
            BM: tl.constexpr, BK: tl.constexpr, IEEE: tl.constexpr):
        # out[M, N] = relu(x[M, :K] * s + t) @ wt[K, N]; x rows sx apart
        pid = tl.program_id(0)
        rm = pid * BM + tl.arange(0, BM)
        rn = tl.arange(0, N)
        mm = rm < M
        acc = tl.zeros((BM, N), dtype=tl.float32)
        for k0 in range(0, K, BK):
            rk = k0 + tl.arange(0, BK)
            mk = rk < K
            x = tl.load(x_ptr + rm[:, None].to(tl.int64) * sx + rk[None, :], mask=mm[:, None] & mk[None, :],
                        other=0.0).to(tl.float32)
            s = tl.load(s_ptr + rk, mask=mk, other=0.0)
            t = tl.load(t_ptr + rk, mask=mk, other=0.0)
            a = tl.maximum(x * s[None, :] + t[None, :], 0.0).to(w_ptr.dtype.element_ty)
            w = tl.load(w_ptr + rk[:, None] * N + rn[None, :], mask=mk[:, None], other=0.0)
            if IEEE:
                acc = tl.dot(a, w, acc, input_precision="ieee")
            else:
                acc = tl.dot(a, w, acc)
        tl.store(out_ptr + rm[:, None].to(tl.int64) * N + rn[None, :], acc.to(out_ptr.dtype.element_ty),
                 mask=mm[:, None])

    @triton.jit
    def fused_bn_relu_conv1x1_dweight(x_ptr, sx, s_ptr, t_ptr, dh_ptr, dw_ptr, M, K, rows_per_split, N: tl.constexpr,
                BM: tl.constexpr, BK: tl.constexpr, IEEE: tl.constexpr):
        # dwt[K, N] += relu(x * s + t)[rows, K-tile]^T @ dh[rows, N], rows: this program's split of M
        pk = tl.program_id(0)
        ps = tl.program_id(1)
        rk = pk * BK + tl.arange(0, BK)
        mk = rk < K
        rn = tl.arange(0, N)
        s = tl.load(s_ptr + rk, mask=mk, other=0.0)
        t = tl.load(t_ptr + rk, mask=mk, other=0.0)
        acc = tl.zeros((BK, N), dtype=tl.float32)
        m_lo = ps * rows_per_split
        for m0 in range(m_lo, m_lo + rows_per_split, BM):
            rm = m0 + tl.arange(0, BM)
            mm = (rm < M) & (rm < m_lo + rows_per_split)
            x = tl.load(x_ptr + rm[:, None].to(tl.int64) * sx + rk[None, :], mask=mm[:, None] & mk[None, :],
                        other=0.0).to(tl.float32)
            a = tl.maximum(x * s[None, :] + t[None, :], 0.0)
            a = tl.where(mm[:, None], a, 0.0).to(dh_ptr.dtype.element_ty)
            dh = tl.load(dh_ptr + rm[:, None].to(tl.int64) * N + rn[None, :], mask=mm[:, None], other=0.0)
            if IEEE:
                acc = tl.dot(tl.trans(a), dh, acc, input_precision="ieee")
            else:
                acc = tl.dot(tl.trans(a), dh, acc)
        tl.atomic_add(dw_ptr + rk[:, None] * N + rn[None, :], acc, mask=mk[:, None])

    @triton.jit
    def fused_bn_relu_conv1x1_dinput(x_ptr, sx, g_ptr, s_ptr, t_ptr, dh_ptr, w_ptr, p1_ptr, p2_ptr, M, K,
                                     N: tl.constexpr, BM: tl.constexpr, BK: tl.constexpr, IEEE: tl.constexpr):
        # per K-tile: d = dh[rows, N] @ w[N, K-tile]; g = d where x * s + t > 0;
        # p1[pid, k] = sum_rows g, p2[pid, k] = sum_rows g * x; gbuf[rows, K-tile] += s * g
        pid = tl.program_id(0)
        rm = pid * BM + tl.arange(0, BM)
        mm = rm < M
        rn = tl.arange(0, N)
        dh = tl.load(dh_ptr + rm[:, None].to(tl.int64) * N + rn[None, :], mask=mm[:, None], other=0.0)
        for k0 in range(0, K, BK):
            rk = k0 + tl.arange(0, BK)
            mk = rk < K
            w = tl.load(w_ptr + rn[:, None] * K + rk[None, :], mask=mk[None, :], other=0.0)
            if IEEE:
                d = tl.dot(dh, w, input_precision="ieee")
            else:
                d = tl.dot(dh, w)
            m2 = mm[:, None] & mk[None, :]
            off = rm[:, None].to(tl.int64) * sx + rk[None, :]
            x = tl.load(x_ptr + off, mask=m2, other=0.0).to(tl.float32)
            s = tl.load(s_ptr + rk, mask=mk, other=0.0)
            t = tl.load(t_ptr + rk, mask=mk, other=0.0)
            g = tl.where(((x * s[None, :] + t[None, :]) > 0.0) & m2, d, 0.0)
            tl.store(p1_ptr + pid * K + rk, tl.sum(g, axis=0), mask=mk)
            tl.store(p2_ptr + pid * K + rk, tl.sum(g * x, axis=0), mask=mk)
            gb = tl.load(g_ptr + off, mask=m2, other=0.0).to(tl.float32)
            tl.store(g_ptr + off, (gb + g * s[None, :]).to(g_ptr.dtype.element_ty), mask=m2)

    return fused_bn_relu_conv1x1_fwd, fused_bn_relu_conv1x1_dweight, fused_bn_relu_conv1x1_dinput


def _sm_count(device: torch.device) -> int:
    return torch.cuda.get_device_properties(device).multi_processor_count if device.type == "cuda" else 4


def bn_relu_conv1x1(x2d: torch.Tensor, s: torch.Tensor, t: torch.Tensor, wt: torch.Tensor) -> torch.Tensor:
    """relu(x2d * s + t) @ wt, x2d: [M, K] with unit column stride (rows any stride); wt: [K, N]."""
    M, K = x2d.shape
    N = wt.shape[1]
    out = torch.empty((M, N), device=x2d.device, dtype=x2d.dtype)
    fwd, _, _ = _kernels()
    interp = _interpreting()
    import triton

    BM = 16 if interp else 128
    BK = 32 if interp else 64
    fwd[(triton.cdiv(M, BM),)](x2d, x2d.stride(0), s, t, wt, out, M, K, N=N, BM=BM, BK=BK,
                               IEEE=wt.dtype == torch.float32, num_warps=4 if interp else 8,
                               num_stages=1 if interp else 3)
    return out


def bn_relu_conv1x1_dweight(x2d: torch.Tensor, s: torch.Tensor, t: torch.Tensor, dh: torch.Tensor) -> torch.Tensor:
    """relu(x2d * s + t)^T @ dh in fp32: [K, N]."""
    M, K = x2d.shape
    N = dh.shape[1]
    _, dweight, _ = _kernels()
    interp = _interpreting()
    import triton

    BK = 32 if interp else 128
    BM = 16 if interp else 64
    ktiles = triton.cdiv(K, BK)
    splits = max(1, min(triton.cdiv(M, BM), triton.cdiv(4 * _sm_count(x2d.device), ktiles)))
    rows = triton.cdiv(triton.cdiv(M, splits), BM) * BM
    splits = triton.cdiv(M, rows)
    dw = torch.zeros((K, N), device=x2d.device, dtype=torch.float32)
    dweight[(ktiles, splits)](x2d, x2d.stride(0), s, t, dh, dw, M, K, rows, N=N, BM=BM, BK=BK,
                              IEEE=dh.dtype == torch.float32, num_warps=4 if interp else 8,
                              num_stages=1 if interp else 3)
    return dw


def bn_relu_conv1x1_dinput(x2d: torch.Tensor, gbuf2d: torch.Tensor, s: torch.Tensor, t: torch.Tensor,
                           dh: torch.Tensor, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Adds s * g into gbuf2d[:, :K] (g: dh @ w masked by relu(x2d * s + t) > 0) and returns
    (sum g, sum g * x2d) per column, fp32."""
    M, K = x2d.shape
    N = dh.shape[1]
    _, _, dinput = _kernels()
    interp = _interpreting()
    import triton

    BM = 16 if interp else 64
    BK = 32 if interp else 64
    P = triton.cdiv(M, BM)
    p1 = torch.empty((P, K), device=x2d.device, dtype=torch.float32)
    p2 = torch.empty((P, K), device=x2d.device, dtype=torch.float32)
    dinput[(P,)](x2d, x2d.stride(0), gbuf2d, s, t, dh, w, p1, p2, M, K, N=N, BM=BM, BK=BK,
                 IEEE=dh.dtype == torch.float32, num_warps=4, num_stages=1 if interp else 2)
    return p1.sum(0), p2.sum(0)


def _rows(t4: torch.Tensor) -> torch.Tensor:
    """[N, C, H, W] channels-last (or a channel slice of one) as the [N*H*W, C] matrix it is."""
    n, c, h, w = t4.shape
    return t4.permute(0, 2, 3, 1).reshape(n * h * w, c) if t4.is_contiguous(memory_format=torch.channels_last) \
        else t4.permute(0, 2, 3, 1).view(n * h * w, c)


def _update_running(norm: torch.nn.BatchNorm2d, mean: torch.Tensor, var: torch.Tensor, n: int) -> None:
    if not norm.track_running_stats:
        return
    norm.num_batches_tracked.add_(1)
    momentum = norm.momentum if norm.momentum is not None else 1.0 / float(norm.num_batches_tracked)
    norm.running_mean.mul_(1 - momentum).add_(mean, alpha=momentum)
    norm.running_var.mul_(1 - momentum).add_(var * (n / max(n - 1, 1)), alpha=momentum)


class _FusedDenseBlock(torch.autograd.Function):
    """A dense block over one buffer; see the module docstring. Inputs: the block's input
    feature maps, the block module (running statistics), then per layer norm1.weight,
    norm1.bias, conv1.weight, norm2.weight, norm2.bias, conv2.weight."""

    @staticmethod
    def forward(ctx, x, block, *params):
        layers = list(block.children())
        n, c0, h, w = x.shape
        growth = layers[0].layers.conv2.out_channels
        ctot = c0 + growth * len(layers)
        M = n * h * w
        dt = x.dtype
        buf = torch.empty((n, ctot, h, w), device=x.device, dtype=dt, memory_format=torch.channels_last)
        buf[:, :c0].copy_(x)
        X = _rows(buf)  # [M, ctot] view
        mean = torch.empty(ctot, device=x.device, dtype=torch.float32)
        var = torch.empty_like(mean)
        v, m = torch.var_mean(X[:, :c0].float(), dim=0, correction=0)
        mean[:c0], var[:c0] = m, v
        saved = []
        k = c0
        for i, layer in enumerate(layers):
            seq = layer.layers
            g1, b1, w1, g2, b2, w2 = params[6 * i:6 * i + 6]
            n1, n2 = seq.norm1, seq.norm2
            with torch.no_grad():
                _update_running(n1, mean[:k], var[:k], M)
            rstd = torch.rsqrt(var[:k] + n1.eps)
            s = rstd * g1
            t = b1 - mean[:k] * s
            wt = w1.reshape(w1.shape[0], k).t().to(dt).contiguous()  # [K, 128]
            h1 = bn_relu_conv1x1(X[:, :k], s, t, wt)  # [M, 128]
            h1_4 = h1.view(n, h, w, -1).permute(0, 3, 1, 2)  # channels-last [N, 128, H, W]
            n2.num_batches_tracked.add_(1)
            mom2 = n2.momentum if n2.momentum is not None else 1.0 / float(n2.num_batches_tracked)
            y2, sm2, si2 = torch.ops.aten.native_batch_norm(h1_4, g2, b2, n2.running_mean, n2.running_var, True,
                                                            mom2, n2.eps)
            a2 = torch.relu(y2)
            w2d = w2.to(dt)
            out = F.conv2d(a2, w2d, padding=seq.conv2.padding)
            buf[:, k:k + growth].copy_(out)
            v, m = torch.var_mean(X[:, k:k + growth].float(), dim=0, correction=0)
            mean[k:k + growth], var[k:k + growth] = m, v
            saved.append((k, rstd, s, t, h1_4, sm2, si2, a2))
            k += growth
        ctx.block = block
        ctx.shape = (n, c0, h, w, ctot, growth)
        ctx.saved = saved
        ctx.save_for_backward(buf, mean, var, *params)
        return buf

    @staticmethod
    def backward(ctx, grad_buf):
        buf, mean, var, *params = ctx.saved_tensors
        n, c0, h, w, ctot, growth = ctx.shape
        layers = list(ctx.block.children())
        M = n * h * w
        dt = buf.dtype
        X = _rows(buf)
        gbuf = torch.empty_like(buf, memory_format=torch.channels_last)
        gbuf.copy_(grad_buf)
        G = _rows(gbuf)
        dmean = torch.zeros_like(mean)
        dvar = torch.zeros_like(var)
        grads = [None] * len(params)

        def part_grad(lo: int, hi: int) -> torch.Tensor:
            # the gradient of channels [lo, hi) complete: add what flows through their statistics
            xs = X[:, lo:hi].float()
            gs = G[:, lo:hi].float() + dmean[lo:hi] / M + (xs - mean[lo:hi]) * (dvar[lo:hi] * (2.0 / M))
            return gs.to(dt)

        for i in reversed(range(len(layers))):
            seq = layers[i].layers
            g1, b1, w1, g2, b2, w2 = params[6 * i:6 * i + 6]
            k, rstd, s, t, h1_4, sm2, si2, a2 = ctx.saved[i]
            dout = part_grad(k, k + growth).view(n, h, w, growth).permute(0, 3, 1, 2)
            da2, dw2, _ = torch.ops.aten.convolution_backward(
                dout, a2, w2.to(dt), None, list(seq.conv2.stride), list(seq.conv2.padding),
                list(seq.conv2.dilation), False, [0, 0], 1, [True, True, False])
            dy2 = torch.where(a2 > 0, da2, torch.zeros((), device=da2.device, dtype=da2.dtype))
            dh1_4, dg2, db2 = torch.ops.aten.native_batch_norm_backward(
                dy2, h1_4, g2, seq.norm2.running_mean, seq.norm2.running_var, sm2, si2, True, seq.norm2.eps,
                [True, True, True])
            dh1 = _rows(dh1_4.contiguous(memory_format=torch.channels_last))  # [M, 128]
            w1m = w1.reshape(w1.shape[0], k).to(dt).contiguous()  # [128, K]
            dw1 = bn_relu_conv1x1_dweight(X[:, :k], s, t, dh1)  # [K, 128] fp32
            G1, G2 = bn_relu_conv1x1_dinput(X[:, :k], G[:, :k], s, t, dh1, w1m)
            mu = mean[:k]
            cen = G2 - mu * G1
            grads[6 * i + 0] = rstd * cen  # norm1.weight
            grads[6 * i + 1] = G1  # norm1.bias
            grads[6 * i + 2] = dw1.t().reshape(w1.shape).to(w1.dtype)
            dmean[:k] -= g1 * rstd * G1
            dvar[:k] -= 0.5 * rstd ** 3 * g1 * cen
            grads[6 * i + 3] = dg2.to(g2.dtype)
            grads[6 * i + 4] = db2.to(b2.dtype)
            grads[6 * i + 5] = dw2.to(w2.dtype)
        dx = part_grad(0, c0).view(n, h, w, c0).permute(0, 3, 1, 2)
        ctx.saved = None
        return (dx, None, *grads)


@torch._dynamo.disable
def fused_dense_block(block: _DenseBlock, x: torch.Tensor) -> torch.Tensor:
    """The block's output (all its feature maps, channels-last) through :class:`_FusedDenseBlock`;
    left out of torch.compile's graphs (it is its own kernels)."""
    params = []
    for layer in block.children():
        seq = layer.layers
        if hasattr(seq, "dropout"):
            raise ValueError("fused dense blocks do not implement dropout")
        params += [seq.norm1.weight, seq.norm1.bias, seq.conv1.weight, seq.norm2.weight, seq.norm2.bias,
                   seq.conv2.weight]
    if x.is_cuda and torch.is_autocast_enabled("cuda"):
        x = x.to(torch.get_autocast_dtype("cuda"))
    with torch.autocast(x.device.type, enabled=False):
        return _FusedDenseBlock.apply(x.contiguous(memory_format=torch.channels_last), block, *params)


class FusedDenseNet121(ListDenseNet121):
    """DenseNet121 (2D) whose dense blocks run as fused kernels in training; see the module docstring."""

    def fused_active(self, x: torch.Tensor) -> bool:
        return (self.training and torch.is_grad_enabled() and triton_available()[0]
                and (x.is_cuda or (x.device.type == "cpu" and _interpreting())))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.fused_active(x):
            return super().forward(x)
        f = self.features
        x = f.pool0(f.relu0(f.norm0(f.conv0(x))))
        for name, mod in f.named_children():
            if isinstance(mod, _DenseBlock):
                x = fused_dense_block(mod, x)
            elif isinstance(mod, _Transition):
                x = mod.conv(mod.pool(mod.relu(mod.norm(x))))  # pool first: both linear after the ReLU
            elif name == "norm5":
                x = mod(x)
        return self.class_layers(x)
