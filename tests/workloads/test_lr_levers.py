"""The learning-rate levers (the tutorial's constant 1e-5 against the suite's warm-up + cosine),
the recipe's epoch budget grown to the tutorial's length, and NVML's index of a visible GPU."""

from __future__ import annotations

import time

import pytest

from common.measure.samplers import nvml_index
from common.workloads.levers import Levers
from common.workloads.time_to_target import epoch_budget, train_to_target
from common.workloads.training import Trainer, lr_at, lr_for, scaled_lr
from tests.workloads.trainer_fake import FakeTrainer


def test_learning_rate_levers_are_checked_and_labelled():
    with pytest.raises(ValueError, match="lr_schedule"):
        Levers(lr_schedule="step")
    with pytest.raises(ValueError, match="lr must be > 0"):
        Levers(lr=0.0)
    with pytest.raises(ValueError, match="constant learning rate has none"):
        Levers(lr_schedule="constant", schedule_epochs=1.0)
    assert Levers(lr=1e-5, lr_schedule="constant").label().endswith("lr1e-05 constant_lr")
    assert "lr" not in Levers().label().split()[-1]


def test_lr_for_keeps_a_constant_rate_and_follows_the_schedule_otherwise():
    const, sched = Levers(lr=1e-5, lr_schedule="constant"), Levers()
    assert [lr_for(const, i, 100, 1e-5) for i in (0, 50, 99)] == [1e-5] * 3
    assert [lr_for(sched, i, 100, 1e-3) for i in (0, 50, 99)] == [lr_at(i, 100, 1e-3) for i in (0, 50, 99)]
    assert lr_for(sched, 0, 100, 1e-3) < lr_for(sched, 10, 100, 1e-3)  # the warm-up is there


def test_a_levers_rate_is_used_as_given_for_any_batch(data):
    t = Trainer(data, Levers("device_resident", batch_size=8, lr=1e-5, lr_schedule="constant"), "cpu", lr=1e-3,
                base_batch=300)
    assert t.lr == 1e-5 and t.optimizer.param_groups[0]["lr"] == 1e-5
    scaled = Trainer(data, Levers("device_resident", batch_size=8), "cpu", lr=1e-3, base_batch=300)
    assert scaled.lr == pytest.approx(scaled_lr(1e-3, 300, 8))


def test_a_constant_rate_stays_put_through_a_run_to_target():
    t = FakeTrainer(Levers(lr=1e-5, lr_schedule="constant"), 1e-5, steps_per_epoch=5,
                    accuracy=lambda steps: steps / 20)
    res = train_to_target(t, 6, 0.99, time.perf_counter(), {})
    assert res["epochs_to_target"] == 4 and t.lrs == [1e-5] * 20


def test_the_epoch_budget_grows_to_hold_min_steps_in_whole_epochs():
    assert epoch_budget(10, 0, 32) == 10
    assert epoch_budget(10, 632, 32) == 20  # the tutorial's 632 steps on the 9,600-image sample
    assert epoch_budget(10, 100, 32) == 10  # never below the spec's budget
    assert epoch_budget(3, 632, 0) == 632  # no steps per epoch: one step each, never a division by zero


def test_nvml_index_follows_cuda_visible_devices():
    assert nvml_index(0, visible="") == 0
    assert nvml_index(0, visible="1") == 1
    assert nvml_index(1, visible="3, 2") == 2
    assert nvml_index(0, visible="GPU-1234abcd") == 0  # a UUID list: left as given
    assert nvml_index(2, visible="1") == 2  # past the list: left as given


@pytest.fixture
def data(synthetic_data_dir):
    from common.workloads.mednist_data import load_mednist

    return load_mednist(synthetic_data_dir, 0.1, 0.1, 0, max_train=32)
