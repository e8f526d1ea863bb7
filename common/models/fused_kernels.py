"""Triton kernels of :mod:`common.models.fused_dense`: a dense layer's batch norm + ReLU + 1x1
convolution over the feature maps of its block, forward and backward, reading each feature map
where it lies (no concatenation) and normalising it in registers.

A block's layer reads a list of feature maps: the block's input (C0 channels) and the 32-channel
outputs of the layers before it, each a channels-last tensor, that is an [M, C] matrix
(M = N*H*W pixels). Triton kernels take a fixed list of pointers, so one kernel is generated per
list shape (number of maps, C0, growth) and cached: the source is written to a file (Triton
reads a kernel's source) and imported. Every tile covers 32 channels of one map.

Importing this module imports Triton and defines the kernels, so ``TRITON_INTERPRET`` is read
then (the CPU tests run the kernels interpreted).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import sys
import tempfile
from pathlib import Path

import triton
import triton.language as tl

from common.models.triton_env import interpreting

TILE = 32  # channels per tile: every feature map's channel count is a multiple of it


@triton.jit
def _dot(a, b, acc, IEEE: tl.constexpr):
    if IEEE:
        return tl.dot(a, b, acc, input_precision="ieee")
    return tl.dot(a, b, acc)


@triton.jit
def fwd_tile(acc, p, stride: tl.constexpr, col: tl.constexpr, k0: tl.constexpr, rm64, mm, s_ptr, t_ptr, wt_ptr,
             N: tl.constexpr, IEEE: tl.constexpr):
    """acc += relu(x[rows, col:col+32] * s + t) @ wt[k0:k0+32, :]"""
    rk = tl.arange(0, 32)
    x = tl.load(p + rm64[:, None] * stride + col + rk[None, :], mask=mm[:, None], other=0.0).to(tl.float32)
    s = tl.load(s_ptr + k0 + rk)
    t = tl.load(t_ptr + k0 + rk)
    a = tl.maximum(x * s[None, :] + t[None, :], 0.0).to(wt_ptr.dtype.element_ty)
    w = tl.load(wt_ptr + (k0 + rk)[:, None] * N + tl.arange(0, N)[None, :])
    return _dot(a, w, acc, IEEE)


@triton.jit
def dinput_tile(dh, p, gp, stride: tl.constexpr, col: tl.constexpr, k0: tl.constexpr, K: tl.constexpr, rm64, mm,
                pid, s_ptr, t_ptr, w_ptr, p1_ptr, p2_ptr, N: tl.constexpr, IEEE: tl.constexpr):
    """g = (dh @ w[:, k0:k0+32]) where x * s + t > 0; gp[rows, col:col+32] = s * g;
    p1[pid, k0:k0+32] = sum_rows g; p2[pid, k0:k0+32] = sum_rows g * x"""
    rk = tl.arange(0, 32)
    w = tl.load(w_ptr + tl.arange(0, N)[:, None] * K + (k0 + rk)[None, :])
    d = _dot(dh, w, tl.zeros((dh.shape[0], 32), dtype=tl.float32), IEEE)
    off = rm64[:, None] * stride + col + rk[None, :]
    x = tl.load(p + off, mask=mm[:, None], other=0.0).to(tl.float32)
    s = tl.load(s_ptr + k0 + rk)
    t = tl.load(t_ptr + k0 + rk)
    g = tl.where(((x * s[None, :] + t[None, :]) > 0.0) & mm[:, None], d, 0.0)
    tl.store(p1_ptr + pid * K + k0 + rk, tl.sum(g, axis=0))
    tl.store(p2_ptr + pid * K + k0 + rk, tl.sum(g * x, axis=0))
    tl.store(gp + off, (g * s[None, :]).to(gp.dtype.element_ty), mask=mm[:, None])


@triton.jit
def dweight_tile(acc, dh, p, stride, col, k0, K: tl.constexpr, rm64, mm, s_ptr, t_ptr, IEEE: tl.constexpr):
    """acc[32, N] += relu(x[rows, col:col+32] * s + t)^T @ dh[rows, N] (nothing where k0 >= K)"""
    rk = tl.arange(0, 32)
    kmask = (k0 + rk) < K
    m2 = mm[:, None] & kmask[None, :]
    x = tl.load(p + rm64[:, None] * stride + col + rk[None, :], mask=m2, other=0.0).to(tl.float32)
    s = tl.load(s_ptr + k0 + rk, mask=kmask, other=0.0)
    t = tl.load(t_ptr + k0 + rk, mask=kmask, other=0.0)
    a = tl.where(m2, tl.maximum(x * s[None, :] + t[None, :], 0.0), 0.0).to(dh.dtype)
    return _dot(tl.trans(a), dh, acc, IEEE)


def _layout(channels: tuple[int, ...]) -> list[tuple[int, int, int, int]]:
    """[(map index, its channels, column in it, column in the layer's input)] per 32-channel tile."""
    tiles, k = [], 0
    for i, c in enumerate(channels):
        if c % TILE:
            raise ValueError(f"feature map {i} has {c} channels, not a multiple of {TILE}")
        for col in range(0, c, TILE):
            tiles.append((i, c, col, k))
            k += TILE
    return tiles


def _source(channels: tuple[int, ...], tiles_per_program: int) -> str:
    n = len(channels)
    K = sum(channels)
    tiles = _layout(channels)
    ps = ", ".join(f"P{i}" for i in range(n))
    gs = ", ".join(f"G{i}" for i in range(n))
    L = ["import triton", "import triton.language as tl",
         "from common.models.fused_kernels import fwd_tile, dinput_tile, dweight_tile", "", "",
         '@triton.jit(do_not_specialize=["M"])',
         f"def fused_bn_relu_conv1x1_fwd({ps}, s_ptr, t_ptr, wt_ptr, out_ptr, M, N: tl.constexpr, "
         "BM: tl.constexpr, IEEE: tl.constexpr):",
         "    pid = tl.program_id(0)",
         "    rm = pid * BM + tl.arange(0, BM)",
         "    mm = rm < M",
         "    rm64 = rm.to(tl.int64)",
         "    acc = tl.zeros((BM, N), dtype=tl.float32)"]
    for i, c, col, k0 in tiles:
        L.append(f"    acc = fwd_tile(acc, P{i}, {c}, {col}, {k0}, rm64, mm, s_ptr, t_ptr, wt_ptr, N, IEEE)")
    L += ["    tl.store(out_ptr + rm64[:, None] * N + tl.arange(0, N)[None, :], acc.to(out_ptr.dtype.element_ty),"
          " mask=mm[:, None])", "", "",
          '@triton.jit(do_not_specialize=["M"])',
          f"def fused_bn_relu_conv1x1_dinput({ps}, {gs}, s_ptr, t_ptr, dh_ptr, w_ptr, p1_ptr, p2_ptr, M, "
          "N: tl.constexpr, BM: tl.constexpr, IEEE: tl.constexpr):",
          "    pid = tl.program_id(0)",
          "    rm = pid * BM + tl.arange(0, BM)",
          "    mm = rm < M",
          "    rm64 = rm.to(tl.int64)",
          "    dh = tl.load(dh_ptr + rm64[:, None] * N + tl.arange(0, N)[None, :], mask=mm[:, None], other=0.0)"]
    for i, c, col, k0 in tiles:
        L.append(f"    dinput_tile(dh, P{i}, G{i}, {c}, {col}, {k0}, {K}, rm64, mm, pid, s_ptr, t_ptr, w_ptr, "
                 "p1_ptr, p2_ptr, N, IEEE)")
    T = tiles_per_program
    L += ["", "",
          '@triton.jit(do_not_specialize=["M", "rows_per_split"])',
          f"def fused_bn_relu_conv1x1_dweight({ps}, s_ptr, t_ptr, dh_ptr, dw_ptr, M, rows_per_split, "
          "N: tl.constexpr, BM: tl.constexpr, IEEE: tl.constexpr):",
          "    pj = tl.program_id(0)",
          "    m_lo = tl.program_id(1) * rows_per_split",
          "    rn = tl.arange(0, N)",
          "    rk = tl.arange(0, 32)"]
    for q in range(T):
        L += [f"    kt{q} = pj * {T} + {q}",
              f"    p{q} = P0",
              f"    st{q} = {channels[0]} + 0 * kt{q}",
              f"    col{q} = kt{q} * 32",
              f"    acc{q} = tl.zeros((32, N), dtype=tl.float32)"]
        first_other = channels[0] // TILE
        for j, (i, c, col, _k0) in enumerate(tiles[first_other:], start=first_other):
            L += [f"    if kt{q} == {j}:", f"        p{q} = P{i}", f"        st{q} = {c} + 0 * kt{q}",
                  f"        col{q} = {col} + 0 * kt{q}"]
    L += ["    for m0 in range(m_lo, m_lo + rows_per_split, BM):",
          "        rm = m0 + tl.arange(0, BM)",
          "        mm = (rm < M) & (rm < m_lo + rows_per_split)",
          "        rm64 = rm.to(tl.int64)",
          "        dh = tl.load(dh_ptr + rm64[:, None] * N + rn[None, :], mask=mm[:, None], other=0.0)"]
    for q in range(T):
        L.append(f"        acc{q} = dweight_tile(acc{q}, dh, p{q}, st{q}, col{q}, kt{q} * 32, {K}, rm64, mm, "
                 "s_ptr, t_ptr, IEEE)")
    for q in range(T):
        L.append(f"    tl.atomic_add(dw_ptr + (kt{q} * 32 + rk)[:, None] * N + rn[None, :], acc{q}, "
                 f"mask=((kt{q} * 32 + rk) < {K})[:, None])")
    return "\n".join(L) + "\n"


TILES_PER_DWEIGHT_PROGRAM = 4
# launch shapes (rows per program, warps, pipeline stages); small and single-stage when interpreted
LAUNCH = {"fwd": dict(BM=128, num_warps=8, num_stages=3), "dinput": dict(BM=64, num_warps=4, num_stages=2),
          "dweight": dict(BM=64, num_warps=8, num_stages=2)}
INTERPRETED_LAUNCH = dict(BM=16, num_warps=4, num_stages=1)


def launch(kind: str) -> dict:
    return dict(INTERPRETED_LAUNCH if interpreting() else LAUNCH[kind])


@functools.cache
def kernels(channels: tuple[int, ...]):
    """(fwd, dinput, dweight) for a layer reading feature maps of these channel counts."""
    src = _source(channels, TILES_PER_DWEIGHT_PROGRAM)
    digest = hashlib.sha1(src.encode()).hexdigest()[:16]
    folder = Path(tempfile.gettempdir()) / f"mednist_suite_fused_kernels_{os.getuid()}"
    folder.mkdir(exist_ok=True)
    path = folder / f"k_{digest}.py"
    if not path.is_file() or path.read_text() != src:
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(src)
        os.replace(tmp, path)
    name = f"mednist_suite_fused_kernels_{digest}"
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    # named so that profiles show them as what they are (benchmarks/step_breakdown.py families)
    return mod.fused_bn_relu_conv1x1_fwd, mod.fused_bn_relu_conv1x1_dinput, mod.fused_bn_relu_conv1x1_dweight


def _warm(job: tuple[tuple[int, ...], str, int]) -> float:
    """Compile one layer's three kernels (no launch) into Triton's on-disk cache: a worker's job."""
    import time

    import torch

    channels, dtype_name, n_out = job
    t0 = time.perf_counter()
    dt = getattr(torch, dtype_name)
    f32 = torch.float32
    n = len(channels)
    ieee = dt == torch.float32
    fwd, dinput, dweight = kernels(channels)
    fwd.warmup(*[dt] * n, f32, f32, dt, dt, 1024, N=n_out, IEEE=ieee, grid=(1,), **launch("fwd"))
    dinput.warmup(*[dt] * (2 * n), f32, f32, dt, dt, f32, f32, 1024, N=n_out, IEEE=ieee, grid=(1,),
                  **launch("dinput"))
    dweight.warmup(*[dt] * n, f32, f32, dt, f32, 1024, 1024, N=n_out, IEEE=ieee, grid=(1,), **launch("dweight"))
    return time.perf_counter() - t0


def triton_cache_dir() -> str:
    """Triton's own default cache folder (what it uses while TRITON_CACHE_DIR is unset)."""
    return os.path.join(os.environ.get("TRITON_HOME") or os.path.expanduser("~"), ".triton", "cache")


def precompile(layers: list[tuple[int, ...]], dtype, n_out: int, workers: int | None = None) -> dict:
    """Compile every layer's kernels in parallel worker processes (one kernel set per distinct
    feature-map list: 58 in DenseNet121, several seconds each when compiled one after another at
    first use); the launches then load them from Triton's cache. Returns what it did."""
    import multiprocessing
    import time
    from concurrent.futures import ProcessPoolExecutor

    # the workers compile into TRITON_CACHE_DIR, and the launches here look there. Unset, Triton uses
    # ~/.triton/cache, but inductor sets the variable to a folder of its own when it compiles its first
    # kernel (torch/_inductor/runtime/triton_heuristics.py), which is after this: the launches would then
    # miss the workers' kernels and compile them again, one after another. Fix the folder first.
    os.environ.setdefault("TRITON_CACHE_DIR", triton_cache_dir())
    jobs = [(tuple(c), str(dtype).removeprefix("torch."), n_out) for c in dict.fromkeys(map(tuple, layers))]
    workers = workers or max(1, min(len(jobs), (os.cpu_count() or 2) - 1, 16))
    t0 = time.perf_counter()
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        per_job = list(pool.map(_warm, jobs))
    return {"kernel_sets": len(jobs), "workers": workers, "wall_s": time.perf_counter() - t0,
            "compile_s_sum": sum(per_job)}
