"""common/models/gemm_1x1.py: the 1x1 convolutions as matrix products compute what the
convolutions compute, forward and backward, with the same parameters and state_dict."""

from __future__ import annotations

import pytest
import torch

from common.models import densenet121
from common.models.gemm_1x1 import GemmConv1x1, as_gemm_1x1
from common.workloads.levers import Levers


def test_the_network_is_unchanged_but_its_1x1_convolutions_are_products():
    torch.manual_seed(0)
    ref = densenet121()
    torch.manual_seed(0)
    gem = densenet121(gemm_1x1=True)
    swapped = [n for n, m in gem.named_modules() if isinstance(m, GemmConv1x1)]
    assert len(swapped) == 61  # 58 dense layers' conv1 and 3 transitions; conv0 (7x7) and every 3x3 stay
    assert all(n.endswith("conv1") or n.endswith("conv") for n in swapped)
    assert ref.state_dict().keys() == gem.state_dict().keys()
    assert all(torch.equal(a, b) for a, b in zip(ref.state_dict().values(), gem.state_dict().values()))
    assert as_gemm_1x1(gem) == 0  # already done: nothing left to swap


@pytest.mark.parametrize("channels_last", [True, False])
def test_forward_and_gradients_match_the_convolutions(channels_last):
    torch.manual_seed(0)
    ref = densenet121()
    gem = densenet121(gemm_1x1=True)
    gem.load_state_dict(ref.state_dict())
    x = torch.rand(4, 1, 64, 64)
    if channels_last:
        ref, gem = ref.to(memory_format=torch.channels_last), gem.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.tensor([0, 1, 2, 5])
    losses = []
    for m in (ref, gem):
        loss = torch.nn.functional.cross_entropy(m(x), y)
        loss.backward()
        losses.append(loss)
    assert torch.allclose(losses[0], losses[1], rtol=1e-5, atol=1e-6)
    for (name, a), b in zip(ref.named_parameters(), gem.parameters()):
        assert torch.allclose(a.grad, b.grad, rtol=1e-3, atol=1e-5), name
    # and the product path really ran where the input is NHWC
    conv = next(m for m in gem.modules() if isinstance(m, GemmConv1x1))
    seen = []
    h = torch.nn.functional.linear
    try:
        torch.nn.functional.linear = lambda *a, **k: seen.append(1) or h(*a, **k)
        gem(x)
    finally:
        torch.nn.functional.linear = h
    assert (len(seen) >= 61) == channels_last and conv.weight.shape[2:] == (1, 1)


def test_levers_refuse_what_the_products_cannot_do():
    with pytest.raises(ValueError, match="channels_last"):
        Levers("device_resident", gemm_1x1=True)
    with pytest.raises(ValueError, match="fused_blocks or concat_free"):
        Levers("device_resident", channels_last=True, gemm_1x1=True, concat_free=True)
    with pytest.raises(ValueError, match="schedule_epochs"):
        Levers(schedule_epochs=0)
    lv = Levers("device_resident", channels_last=True, gemm_1x1=True, schedule_epochs=1.5)
    assert lv.label().endswith("gemm_1x1 sched1.5")
