"""common.models.fused_dense: the fused dense blocks compute MONAI's DenseNet121 -- outputs, every
gradient, running statistics -- and each Triton kernel computes its formula.

On a CPU the kernels run under Triton's interpreter, which is read when Triton defines its
kernels: these checks run in a child process with ``TRITON_INTERPRET=1`` (this file run as a
script), so the GPU tests of the same pytest process keep compiled kernels."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]


def _interpreted(case: str) -> dict:
    env = {**os.environ, "TRITON_INTERPRET": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, __file__, case], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _triton_or_skip():
    from common.models.fused_dense import triton_available

    ok, why = triton_available()
    if not ok:
        pytest.skip(why)


def test_kernels_compute_their_formulas_interpreted():
    _triton_or_skip()
    res = _interpreted("kernels")
    for name, err in res.items():
        assert err < 1e-5, (name, err, res)


def test_fused_network_matches_monai_interpreted():
    """fp32 through the interpreted kernels against MONAI in float64: every gradient at most 3x
    as far off as MONAI's own fp32 run (floor 1e-3 relative: fp32 sums in another order); outputs
    and running statistics equal."""
    _triton_or_skip()
    res = _interpreted("network")
    assert res["out"] < 1e-5, res["out"]
    assert res["buffers"] < 1e-5, res["buffers"]
    assert res["fused_used"] is True
    bad = {n: (e, res["monai_fp32"][n]) for n, e in res["fused"].items() if e > max(3 * res["monai_fp32"][n], 1e-3)}
    assert not bad, bad
    assert len(res["fused"]) == res["n_params"]


def test_without_gpu_or_interpreter_it_is_the_concat_free_forward(monkeypatch):
    """On a CPU without the interpreter (and outside training) it runs ListDenseNet121's
    forward: same outputs and gradients as MONAI."""
    from monai.networks.nets import DenseNet121

    from common.models.fused_dense import FusedDenseNet121

    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    cfg = dict(spatial_dims=2, in_channels=1, out_channels=6, block_config=(2, 2))
    torch.manual_seed(0)
    ref = DenseNet121(**cfg).double()
    torch.manual_seed(0)
    new = FusedDenseNet121(**cfg).double()
    x = torch.randn(4, 1, 32, 32, dtype=torch.float64)
    assert not new.fused_active(x)
    for m in (ref, new):
        torch.nn.functional.cross_entropy(m(x), torch.arange(4) % 6).backward()
    for (n, p), (_, q) in zip(ref.named_parameters(), new.named_parameters()):
        assert torch.allclose(p.grad, q.grad, rtol=1e-9, atol=1e-12), n
    ref.eval(), new.eval()
    assert torch.allclose(ref(x), new(x), atol=1e-12)


def test_lever_builds_and_labels_the_fused_model():
    from common.models import densenet121
    from common.models.fused_dense import FusedDenseNet121
    from common.workloads.levers import Levers

    assert isinstance(densenet121(fused_blocks=True), FusedDenseNet121)
    lv = Levers("device_resident", batch_size=4, fused_blocks=True)
    assert "fused_blocks" in lv.label()
    assert Levers("device_resident", batch_size=4).diff(lv) == {"fused_blocks": (False, True)}


def test_trainer_refuses_fused_blocks_on_cpu():
    from common.workloads.levers import Levers
    from common.workloads.training import Trainer

    with pytest.raises(ValueError, match="fused_blocks needs a CUDA device"):
        Trainer(None, Levers("device_resident", batch_size=4, fused_blocks=True), "cpu")


def test_dropout_is_refused():
    from common.models.fused_dense import FusedDenseNet121

    with pytest.raises(ValueError, match="dropout"):
        FusedDenseNet121(spatial_dims=2, in_channels=1, out_channels=6, block_config=(1, 1), dropout_prob=0.2)


def test_layer_inputs_list_every_dense_layer():
    from common.models.fused_dense import FusedDenseNet121

    m = FusedDenseNet121(spatial_dims=2, in_channels=1, out_channels=6)
    ins = m.layer_inputs()
    assert len(ins) == 6 + 12 + 24 + 16 and len(set(ins)) == 58
    assert ins[0] == (64,) and ins[5] == (64,) + (32,) * 5 and ins[6] == (128,) and ins[-1] == (512,) + (32,) * 15
    assert m.precompile(torch.float32) is None  # no GPU here: nothing to compile


def test_precompile_fixes_the_cache_folder_before_its_workers(monkeypatch):
    """The workers' kernels must land where the launches look: precompile sets TRITON_CACHE_DIR
    (Triton's default) before it starts them, so inductor does not move it later; a folder the
    user set is kept. The pool is replaced here (compiling needs a GPU)."""
    _triton_or_skip()
    import concurrent.futures

    from common.models import fused_kernels

    seen = {}

    class Pool:
        def __init__(self, workers, mp_context=None):
            seen["workers"] = workers

        def __enter__(self):
            seen["dir"] = os.environ.get("TRITON_CACHE_DIR")
            return self

        def __exit__(self, *a):
            return False

        def map(self, fn, jobs):
            seen["jobs"] = list(jobs)
            return [1.0 for _ in seen["jobs"]]

    monkeypatch.setattr(concurrent.futures, "ProcessPoolExecutor", Pool)
    monkeypatch.delenv("TRITON_CACHE_DIR", raising=False)
    done = fused_kernels.precompile([(64,), (64, 32), (64,)], torch.bfloat16, 128)
    assert seen["dir"] == fused_kernels.triton_cache_dir() and seen["dir"].endswith(os.path.join(".triton", "cache"))
    assert seen["jobs"] == [((64,), "bfloat16", 128), ((64, 32), "bfloat16", 128)]  # one job per distinct list
    assert done["kernel_sets"] == 2 and done["compile_s_sum"] == 2.0
    monkeypatch.setenv("TRITON_CACHE_DIR", "/somewhere/else")
    fused_kernels.precompile([(64,)], torch.bfloat16, 128)
    assert seen["dir"] == "/somewhere/else"


def test_feature_maps_must_tile_by_32():
    _triton_or_skip()
    from common.models.fused_kernels import _layout

    assert [t[3] for t in _layout((64, 32))] == [0, 32, 64]
    with pytest.raises(ValueError, match="not a multiple of 32"):
        _layout((64, 48))


# ---- the interpreted checks (child process) ----

def _case_kernels() -> dict:
    """The operator and its two backward kernels against autograd through the same formula:
    maps of 64 + 32 + 32 channels, 2 x 3 x 5 pixels (M = 30, not a multiple of the tiles)."""
    from common.models.fused_dense import bn_relu_conv1x1

    g = torch.Generator().manual_seed(0)
    maps = [torch.randn(2, c, 3, 5, generator=g).contiguous(memory_format=torch.channels_last)
            for c in (64, 32, 32)]
    K = 128
    scale, shift = torch.randn(K, generator=g), torch.randn(K, generator=g)
    weight = torch.randn(16, K, generator=g)
    dout = torch.randn(2, 16, 3, 5, generator=g)
    leaves = [t.clone().requires_grad_() for t in (*maps, scale, shift, weight)]
    out = bn_relu_conv1x1(leaves[:3], *leaves[3:])
    got = torch.autograd.grad(out, leaves, dout)
    ref_leaves = [t.clone().requires_grad_() for t in (*maps, scale, shift, weight)]
    x = torch.cat(ref_leaves[:3], 1)
    s_, t_, w_ = ref_leaves[3:]
    ref = torch.nn.functional.conv2d(torch.relu(x * s_.view(1, -1, 1, 1) + t_.view(1, -1, 1, 1)),
                                     w_.view(16, K, 1, 1))
    want = torch.autograd.grad(ref, ref_leaves, dout)

    def rel(u, v):
        return float((u - v).abs().max() / v.abs().max())

    names = ["map0", "map1", "map2", "scale", "shift", "weight"]
    return {"out": rel(out, ref), "out_channels_last": 0.0 if out.is_contiguous(
        memory_format=torch.channels_last) else 1.0, **{f"d_{n}": rel(a, b) for n, a, b in zip(names, got, want)}}


def _case_network() -> dict:
    from monai.networks.nets import DenseNet121

    from common.models.fused_dense import FusedDenseNet121

    cfg = dict(spatial_dims=2, in_channels=1, out_channels=6, block_config=(2, 3))
    torch.manual_seed(0)
    ref = DenseNet121(**cfg)
    r64 = DenseNet121(**cfg).double()
    r64.load_state_dict(ref.state_dict())
    new = FusedDenseNet121(**cfg)
    new.load_state_dict(ref.state_dict())
    x = torch.randn(4, 1, 64, 64).contiguous(memory_format=torch.channels_last)
    y = torch.arange(4) % 6
    outs = {}
    for name, m, inp in (("ref", ref, x), ("r64", r64, x.double()), ("new", new, x)):
        m.train()
        outs[name] = m(inp)
        torch.nn.functional.cross_entropy(outs[name], y).backward()
    g64 = dict(r64.named_parameters())

    def rel(m):
        return {n: float((p.grad.double() - g64[n].grad).abs().max() / g64[n].grad.abs().max())
                for n, p in m.named_parameters()}

    b_ref, b_new = ref.state_dict(), new.state_dict()
    return {"out": float((outs["new"] - outs["ref"]).abs().max()),
            "buffers": max(float((b_new[k].double() - b_ref[k].double()).abs().max()) for k in b_ref),
            "fused_used": new.fused_active(x), "fused": rel(new), "monai_fp32": rel(ref),
            "n_params": len(list(ref.parameters()))}


if __name__ == "__main__":
    print(json.dumps({"kernels": _case_kernels, "network": _case_network}[sys.argv[1]]()))
