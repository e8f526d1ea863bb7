"""The prewarm lever: a throwaway trainer's steps on random data beside the decode, leaving the
real trainer's initialisation, data and results exactly as without it."""

from __future__ import annotations

import threading
import time

import pytest
import torch

from common.workloads.levers import Levers
from common.workloads.prewarm import overlapped, prewarm


def test_prewarm_needs_the_decoded_data_path():
    with pytest.raises(ValueError, match="prewarm needs data_path='device_resident'"):
        Levers("tutorial", prewarm=True)
    assert "prewarm" in Levers("device_resident", prewarm=True).label()


def test_prewarm_runs_steps_and_a_validation_pass_on_cpu():
    lv = Levers("device_resident", batch_size=4, cudnn_benchmark=False, prewarm=True)
    info = prewarm(lv, torch.device("cpu"), steps=2)
    assert len(info["step_s"]) == 2 and all(s > 0 for s in info["step_s"]) and info["val_s"] > 0
    assert info["total_s"] >= info["build_s"] + sum(info["step_s"]) + info["val_s"] - 1e-6


def test_overlapped_runs_the_work_beside_the_prewarm_and_returns_its_result():
    lv = Levers("device_resident", batch_size=4, cudnn_benchmark=False, prewarm=True)
    seen = {}

    def work():
        seen["thread"] = threading.current_thread().name
        time.sleep(0.2)
        return 42

    result, info = overlapped(work, lv, torch.device("cpu"))
    assert result == 42 and seen["thread"] == "decode"
    assert info["overlapped_with_s"] >= 0.2 and info["waited_for_decode_s"] >= 0


def test_an_error_in_the_decode_reaches_the_caller():
    lv = Levers("device_resident", batch_size=4, cudnn_benchmark=False, prewarm=True)

    def work():
        raise OSError("damaged archive")

    with pytest.raises(OSError, match="damaged archive"):
        overlapped(work, lv, torch.device("cpu"))


def test_the_real_trainer_starts_from_the_same_weights_after_a_prewarm():
    from common.workloads.training import Trainer

    lv = Levers("device_resident", batch_size=4, cudnn_benchmark=False)
    from common.workloads.prewarm import _random_data

    data = _random_data(8, 4)
    before = [p.detach().clone() for p in Trainer(data, lv, "cpu", seed=3).model.parameters()]
    prewarm(lv.replace(prewarm=True), torch.device("cpu"), steps=1)
    after = [p.detach().clone() for p in Trainer(data, lv, "cpu", seed=3).model.parameters()]
    assert all(torch.equal(a, b) for a, b in zip(before, after))


def test_a_cpu_run_with_the_prewarm_lever_says_it_did_not_prewarm(synthetic_data_dir, tmp_path):
    from common.workloads.time_to_target import RunPlan, run_plan

    lv = Levers("device_resident", batch_size=8, cudnn_benchmark=False, prewarm=True)
    plan = RunPlan(rung_id="p", levers=lv.to_dict(), seed=0, kind="cold", device="cpu",
                   data_dir=str(synthetic_data_dir), split_seed=0, val_fraction=0.1, test_fraction=0.1,
                   max_train=32, max_eval=None, lr=1e-3, base_batch=8, epochs=1, target=0.01,
                   cache_dir=str(tmp_path / "cache"), cpu_threads=1)
    res = run_plan(plan)
    assert res["one_time_s"]["prewarm"]["total_s"] is None and "cpu" in res["one_time_s"]["prewarm"]["reason"]
    assert res["reached"]
