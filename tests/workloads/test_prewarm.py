"""The prewarm lever: the real trainer's first step and validation pass on random data beside
the decode, leaving its weights, optimizer state, random streams and results exactly as
without it."""

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


def _trainer(seed=3, batch=4):
    import numpy as np

    from common.data.mednist import Split
    from common.workloads.mednist_data import MedNISTData

    rng = np.random.default_rng(0)
    n, nv = 16, 8
    split = Split([f"t{i}" for i in range(n)], [i % 6 for i in range(n)], [f"v{i}" for i in range(nv)],
                  [i % 6 for i in range(nv)], [], [])
    data = MedNISTData(split, [f"c{i}" for i in range(6)], source={"synthetic": True})
    data._arrays["train"] = (rng.integers(0, 256, (n, 64, 64), dtype=np.uint8), np.arange(n) % 6)
    data._arrays["val"] = (rng.integers(0, 256, (nv, 64, 64), dtype=np.uint8), np.arange(nv) % 6)
    from common.workloads.training import Trainer

    lv = Levers("device_resident", batch_size=batch, cudnn_benchmark=False, prewarm=True)
    return Trainer(data, lv, "cpu", seed=seed)


def test_prewarm_runs_a_step_and_a_validation_pass_on_cpu():
    info = prewarm(_trainer(), steps=2)
    assert len(info["step_s"]) == 2 and all(s > 0 for s in info["step_s"]) and info["val_s"] > 0
    assert info["total_s"] >= sum(info["step_s"]) + info["val_s"] - 1e-6


def test_overlapped_runs_the_work_beside_the_prewarm_and_returns_its_result():
    seen = {}

    def work():
        seen["thread"] = threading.current_thread().name
        time.sleep(0.2)
        return 42

    result, info = overlapped(work, _trainer())
    assert result == 42 and seen["thread"] == "decode"
    assert info["overlapped_with_s"] >= 0.2 and info["waited_for_decode_s"] >= 0


def test_an_error_in_the_decode_reaches_the_caller():
    def work():
        raise OSError("damaged archive")

    with pytest.raises(OSError, match="damaged archive"):
        overlapped(work, _trainer())


def test_a_prewarmed_trainer_trains_bit_for_bit_as_one_that_was_not():
    """Weights, BatchNorm statistics, Adam's state and the random streams are put back: the
    same steps give the same weights, the same losses and the same validation result."""
    runs = []
    for warm in (False, True):
        t = _trainer(seed=5)
        if warm:
            before = [p.detach().clone() for p in t.model.parameters()]
            prewarm(t)
            assert all(torch.equal(a, b) for a, b in zip(before, t.model.parameters()))
            assert not t.optimizer.state
        t.resident()
        losses = [float(t.run_steps(1)[1].detach()) for _ in range(3)]
        runs.append((losses, [p.detach().clone() for p in t.model.state_dict().values()], t.evaluate("val")))
    (l0, s0, v0), (l1, s1, v1) = runs
    assert l0 == l1 and v0 == v1
    assert all(torch.equal(a, b) for a, b in zip(s0, s1))


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
