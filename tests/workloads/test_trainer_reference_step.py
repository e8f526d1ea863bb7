"""The trainer's step against a training loop written out here, independently: same initial
weights, same batches, augmentation off on both sides; the trainer's weights after a few steps
must be the reference's. (Replaces a test that compared run_steps with run_eager_steps, which
run the same code.)"""

from __future__ import annotations

import copy

import pytest
import torch

import config
from common.data.mednist import list_images, load_manifest, mednist_root, split_dataset
from common.transforms import scale_intensity
from common.workloads.levers import Levers
from common.workloads.mednist_data import MedNISTData
from common.workloads.training import Trainer


@pytest.fixture(scope="module")
def small_data(synthetic_data_dir) -> MedNISTData:
    paths, labels, names = list_images(mednist_root(synthetic_data_dir))
    split = split_dataset(paths, labels, config.VAL_FRACTION, config.TEST_FRACTION, 0, max_train=24)
    return MedNISTData(split, names, source=load_manifest(synthetic_data_dir))


def _reference_steps(model, resident, batches, lr):
    """Plain PyTorch: scale, forward, cross-entropy, backward, Adam, zero the gradients."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for idx in batches:
        x = scale_intensity(resident.images[idx])
        loss = torch.nn.functional.cross_entropy(model(x).float(), resident.labels[idx])
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(float(loss.detach()))
    return losses


@pytest.mark.parametrize("runner", ["run_steps", "run_eager_steps"])
def test_trainer_step_equals_an_independent_training_loop(small_data, runner):
    tr = Trainer(small_data, Levers("device_resident", batch_size=2), "cpu", lr=1e-3, base_batch=2)
    tr.augment = torch.nn.Identity()  # random augmentation off on both sides
    init = copy.deepcopy(tr.model)
    seen = []
    take = tr._next_batch
    tr._next_batch = lambda: seen.append(take()) or seen[-1]
    getattr(tr, runner)(2)
    ref = copy.deepcopy(init)
    losses = _reference_steps(ref, tr.resident(), seen, tr.lr)
    assert len(seen) == 2 and all(torch.isfinite(torch.tensor(losses)))
    moved = 0.0
    for (name, p), q, p0 in zip(tr.model.named_parameters(), ref.parameters(), init.parameters()):
        assert torch.allclose(p, q, atol=1e-5, rtol=1e-4), name
        moved = max(moved, float((p - p0).detach().abs().max()))
    assert moved > 1e-4  # the step changed the weights (a step that does nothing fails above or here)
    for (name, b), rb in zip(tr.model.named_buffers(), ref.buffers()):
        if b.is_floating_point():
            assert torch.allclose(b, rb, atol=1e-5), name


def test_reference_comparison_catches_a_wrong_learning_rate(small_data):
    """The check above is not blind: a trainer with twice the learning rate does not pass it."""
    tr = Trainer(small_data, Levers("device_resident", batch_size=2), "cpu", lr=2e-3, base_batch=2)
    tr.augment = torch.nn.Identity()
    init = copy.deepcopy(tr.model)
    seen = []
    take = tr._next_batch
    tr._next_batch = lambda: seen.append(take()) or seen[-1]
    tr.run_steps(2)
    ref = copy.deepcopy(init)
    _reference_steps(ref, tr.resident(), seen, tr.lr / 2)
    assert not all(torch.allclose(p, q, atol=1e-5, rtol=1e-4) for p, q in zip(tr.model.parameters(),
                                                                              ref.parameters()))
