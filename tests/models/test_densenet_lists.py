"""common.models.densenet_lists: the concat-free DenseNet121 is MONAI's network, computing the same
function -- outputs, every gradient, running statistics -- eager and compiled."""

from __future__ import annotations

import pytest
import torch
from monai.networks.nets import DenseNet121

from common.models import densenet121
from common.models.densenet_lists import ListDenseNet121, compile_options
from common.workloads.levers import Levers


def _pair(dtype=torch.float64, **kw):
    cfg = dict(spatial_dims=2, in_channels=1, out_channels=6, **kw)
    torch.manual_seed(0)
    ref = DenseNet121(**cfg).to(dtype)
    torch.manual_seed(0)
    new = ListDenseNet121(**cfg).to(dtype)
    return ref, new


def _step(model, x, y):
    model.train()
    model.zero_grad(set_to_none=True)
    out = model(x)
    torch.nn.functional.cross_entropy(out, y).backward()
    return out.detach()


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))


def test_same_parameters_initialisation_and_state_dict():
    ref, new = _pair(torch.float32)
    sd_ref, sd_new = ref.state_dict(), new.state_dict()
    assert list(sd_ref) == list(sd_new)
    assert all(torch.equal(sd_ref[k], sd_new[k]) for k in sd_ref)
    assert isinstance(densenet121(concat_free=True), ListDenseNet121)
    assert type(densenet121()) is DenseNet121


def test_same_function_outputs_gradients_and_running_stats_in_float64():
    """In float64 rounding vanishes, so any difference in the mathematics would show: the
    shared batch statistics, the pooling moved before the transition's convolution, the
    recomputed concatenation."""
    ref, new = _pair()
    x = torch.randn(4, 1, 64, 64, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 3])
    for _ in range(2):  # the second step starts from updated running statistics
        out_ref, out_new = _step(ref, x, y), _step(new, x, y)
    assert _rel(out_new, out_ref) < 1e-10
    worst = max((_rel(pn.grad, pr.grad), name) for (name, pr), pn in zip(ref.named_parameters(), new.parameters()))
    # norm0.weight's gradient is a near-cancelling sum (~1e-6 of the others): relative 1e-8 there
    assert worst[0] < 1e-7, worst
    for (name, br), bn in zip(ref.named_buffers(), new.buffers()):
        assert torch.allclose(bn, br, rtol=1e-12, atol=1e-14), name
    ref.eval(), new.eval()
    with torch.no_grad():
        assert _rel(new(x), ref(x)) < 1e-10


def test_lever_builds_the_concat_free_model_and_labels_it():
    from common.workloads.training import Trainer

    lv = Levers("device_resident", batch_size=4, concat_free=True)
    assert "concat_free" in lv.label() and lv.to_dict()["concat_free"] is True
    assert Levers("device_resident", batch_size=4).diff(lv) == {"concat_free": (False, True)}

    class _NoData:  # Trainer only needs the data when it runs a step
        pass

    tr = Trainer(_NoData(), lv, "cpu")
    assert isinstance(tr.model, ListDenseNet121)


@pytest.mark.slow
def test_compiled_concat_free_matches_eager_monai():
    """Under torch.compile with the options it ships with (pointwise concatenation, the
    checkpointed normalisation), a training step gives MONAI's gradients."""
    torch._dynamo.reset()
    ref, new = _pair(torch.float32, block_config=(2, 3))
    x = torch.randn(8, 1, 64, 64)
    y = torch.arange(8) % 6
    compiled = torch.compile(new, options=compile_options())
    out_ref, out_new = _step(ref, x, y), _step(compiled, x, y)
    assert _rel(out_new, out_ref) < 1e-4
    for (name, pr), pn in zip(ref.named_parameters(), new.parameters()):
        if name != "features.norm0.weight":  # near-cancelling sum, see above
            assert _rel(pn.grad, pr.grad) < 1e-2, name


def test_compile_options_are_options_of_this_inductor():
    """torch.compile rejects unknown options: the ones the lever adds exist here (on the
    torch this suite is tested with, force_pointwise_cat does)."""
    from torch._inductor import config as inductor_config

    opts = compile_options()
    assert all(hasattr(inductor_config, k) for k in opts)
    assert opts.get("force_pointwise_cat") is True
