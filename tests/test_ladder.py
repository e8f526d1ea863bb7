"""common.workloads.ladder: the rungs each device gets, the CPU's probe rungs, and a probe
that trains the fastest candidate it measured."""

from __future__ import annotations

import pytest
import torch

import config
from common.workloads.ladder import (
    batch_candidates,
    default_rungs,
    format_candidates,
    pick_winner,
    run_ladder,
    thread_candidates,
)
from common.workloads.levers import Levers
from common.workloads.mednist_data import MedNISTData, load_mednist

CPU = torch.device("cpu")


def test_cpu_default_ladder_ends_in_probes_and_quick_has_none():
    rungs, _ = default_rungs(CPU, 300, 4, quick=False)
    assert [r.name for r in rungs][:3] == ["MONAI tutorial recipe", "cached decoded tensors",
                                           "device-resident data, batched device augmentation"]
    assert [r.name for r in rungs if r.candidates] == ["threads", "precision x memory format", "batch"]
    quick, _ = default_rungs(CPU, 32, 1, quick=True)
    assert not any(r.candidates for r in quick)
    assert quick[-1].levers.channels_last


def test_candidates():
    cur = Levers("device_resident", batch_size=300, cpu_threads=2)
    assert [c.batch_size for c in batch_candidates(cur)] == [75, 150, 300, 600]
    assert [c.batch_size for c in batch_candidates(cur.replace(batch_size=2))] == [1, 2, 4]
    fmts = format_candidates(CPU)(cur)
    assert {(c.precision, c.channels_last) for c in fmts} >= {("fp32", False), ("fp32", True)}
    assert all(c.batch_size == 300 for c in fmts)
    threads = [c.cpu_threads for c in thread_candidates(cur)]
    assert threads == sorted(set(threads)) and threads[0] >= 1


@pytest.fixture(scope="module")
def data(synthetic_data_dir) -> MedNISTData:
    return load_mednist(synthetic_data_dir, config.VAL_FRACTION, config.TEST_FRACTION, 0, max_train=24)


def test_probe_rung_trains_the_fastest_candidate_and_restores_threads(data):
    from common.workloads.ladder import Rung

    threads = torch.get_num_threads()
    base = Levers("tutorial", batch_size=4, num_workers=0)
    rungs = [Rung("MONAI tutorial recipe", base, "baseline"),
             Rung("device-resident", base.replace(data_path="device_resident"), "data_path"),
             Rung("batch", base, "probe", candidates=batch_candidates)]
    partial: list[int] = []
    res = run_ladder(rungs, data, CPU, lr=1e-3, base_batch=4, seed=0, epochs=1, target=0.97, tolerance=0.005,
                     steps=1, repeats=2, warmup=0, min_window_s=0.01,
                     on_rung=lambda p: partial.append(len(p["rungs"])))
    assert partial == [1, 2, 3]  # the results so far after every rung
    # MFU against the fastest matrix product measured (fp32 can beat bf16 on a CPU without AMX)
    assert res["matmul_peak"]["flops_per_s"] == max(p["flops_per_s"] for p in res["matmul_peaks"])
    probe = res["rungs"][2]
    assert [r["levers"]["batch_size"] for r in probe["probe"]] == [1, 2, 4, 8]
    assert all(r["levers"]["data_path"] == "device_resident" for r in probe["probe"])  # built on the rung before
    fastest = max(probe["probe"], key=lambda r: r["images_per_s"]["median"])
    assert probe["levers"] == fastest["levers"]
    assert probe["name"].startswith("batch: ")
    assert torch.get_num_threads() == threads


def _rung(acc: float, rate: float, reached: bool = True) -> dict:
    return {"name": f"r{rate}", "accuracy": {"test_accuracy": acc, "epochs_to_target": 1 if reached else None,
                                             "target_val_accuracy": 0.97, "time_to_target_s": 10.0 / rate},
            "images_per_s": {"median": rate}, "end_to_end": {"images_per_s": [rate, rate * 1.01, rate * 0.99]}}


def test_pick_winner_takes_the_fastest_within_the_gate():
    res = [_rung(0.99, 10.0), _rung(0.988, 50.0), _rung(0.95, 90.0)]
    s = pick_winner(res, 0.005)
    assert s["winner_index"] == 1 and s["gate_applied"]
    assert res[2]["meets_accuracy_gate"] is False
    assert abs(s["speedup"]["value"] - 5.0) < 0.1 and abs(s["time_to_accuracy_ratio"] - 5.0) < 1e-9
    assert s["time_to_accuracy_ratio_warm"] == s["time_to_accuracy_ratio"]  # no graph setup: the same
    compiled = _rung(0.99, 50.0)
    compiled["accuracy"]["time_to_target_s"] = 100.2  # 100 s of it compiling and capturing
    compiled["setup_s"] = {"graph_warmup": 99.9, "graph_capture": 0.1}
    pick_winner([_rung(0.99, 10.0), compiled], 0.005)
    assert abs(compiled["time_to_accuracy_ratio"] - 1.0 / 100.2) < 1e-12
    assert abs(compiled["time_to_accuracy_ratio_warm"] - 1.0 / 0.2) < 1e-9
    ungated = pick_winner([_rung(0.4, 10.0, reached=False), _rung(0.3, 20.0, reached=False)], 0.005)
    assert s["winner_rule"] == "fastest within the accuracy gate"
    assert ungated["winner_index"] == 1 and not ungated["gate_applied"] and "not applied" in ungated["gate_reason"]


def test_dataloader_rungs_are_timed_in_whole_epochs_from_a_boundary(data, monkeypatch):
    """Windows of a few steps would time the workers' prefetch queue, not the recipe: a rung
    fed by DataLoader workers is timed in whole epochs, each from an epoch boundary; a
    device-resident rung, or one whose epochs are too long, keeps windows of steps."""
    from common.workloads.ladder import Rung, run_rung

    kw = dict(lr=1e-3, base_batch=4, seed=0, epochs=1, target=0.97, steps=1, repeats=2, warmup=1, min_window_s=0.01)
    loader = Rung("recipe", Levers("tutorial", batch_size=4, num_workers=1), "baseline")
    r = run_rung(loader, data, CPU, **kw)
    per_epoch = -(-len(data.train_paths_labels()[0]) // 4)
    assert r["window"]["kind"] == "epochs" and r["steps_per_window"] == per_epoch * r["window"]["epochs"]
    assert r["end_to_end"]["images"] == [len(data.train_paths_labels()[0]) * r["window"]["epochs"]] * 2
    monkeypatch.setattr(config, "LOADER_EPOCH_WINDOW_MAX_S", 0.0)
    long_epochs = run_rung(loader, data, CPU, **kw)
    assert long_epochs["window"]["kind"] == "steps" and "more than 0 s" in long_epochs["window"]["reason"]
    resident = run_rung(Rung("resident", Levers("device_resident", batch_size=4), "data_path"), data, CPU, **kw)
    assert resident["window"]["kind"] == "steps" and "no DataLoader workers" in resident["window"]["reason"]


def test_steps_left_in_epoch_follows_the_stream(data):
    from common.workloads.training import Trainer

    t = Trainer(data, Levers("tutorial", batch_size=5, num_workers=0), CPU, lr=1e-3, base_batch=5, seed=0)
    per_epoch = t.steps_per_epoch()
    assert per_epoch == 5 and t.steps_left_in_epoch() == 0  # 24 images: 4 full batches and one of 4
    t.run_steps(2)
    assert t.steps_left_in_epoch() == 3
    t.run_steps(3)
    assert t.steps_left_in_epoch() == 0
    n, _ = t.run_steps(1)  # the next epoch starts with a full batch
    assert n == 5 and t.steps_left_in_epoch() == 4


def test_tuning_rungs_follow_what_this_torch_and_device_have(monkeypatch):
    from common.workloads.ladder import inductor_has, tuning_rungs

    assert inductor_has("coordinate_descent_tuning") and not inductor_has("triton.no_such_option")
    assert not inductor_has("no_such_group.enable_pdl")
    cur = Levers("device_resident", "bf16", True, 2048, graph="compile_cuda_graph", concat_free=True)
    rungs, notes = tuning_rungs(cur, CPU)
    assert [r.name for r in rungs] == ["coordinate-descent tuned kernels"]
    assert dict(rungs[0].levers.compile_options) == {"coordinate_descent_tuning": True}
    assert rungs[0].levers.concat_free and rungs[0].levers.batch_size == 2048  # built on the rung before
    assert len(notes) == 1 and "programmatic-dependent-launch rung left out" in notes[0]
    # on a Hopper card (capability 9.0; faked here, no GPU needed) PDL comes first, then both
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (9, 0))
    hopper, notes = tuning_rungs(cur, torch.device("cuda"))
    assert [r.name for r in hopper] == ["programmatic dependent launch", "coordinate-descent tuned kernels"]
    assert dict(hopper[1].levers.compile_options) == {"triton.enable_pdl": True, "coordinate_descent_tuning": True}
    assert notes == []
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (8, 0))
    assert "not 8.x" in tuning_rungs(cur, torch.device("cuda"))[1][0]
    names = [r.name for r in default_rungs(CPU, 300, 4, quick=False, tuning=True)[0]]
    assert names == [r.name for r in default_rungs(CPU, 300, 4, quick=False)[0]]  # a GPU ladder's rungs only


def test_pick_winner_prefers_the_fastest_within_the_energy_bound():
    """Issue 7's energy target: within the accuracy gate, the fastest rung at <= the bound wins
    over a faster one above it; where no rung meets it (or energy is unmeasured), the fastest."""
    res = [_rung(0.99, 10.0), _rung(0.99, 60.0), _rung(0.99, 50.0), _rung(0.95, 40.0)]
    for r, j in zip(res, (0.09, 0.0108, 0.0090, 0.005)):
        r["gpu_j_per_image"] = j
    s = pick_winner(res, 0.005, 0.01)
    assert s["winner_index"] == 2 and "0.01 J/image" in s["winner_rule"]  # not 3: it fails the accuracy gate
    res[2]["gpu_j_per_image"] = 0.0101
    s = pick_winner(res, 0.005, 0.01)
    assert s["winner_index"] == 1 and "no qualified rung" in s["winner_rule"]
    for r in res:
        r["gpu_j_per_image"] = None
    assert pick_winner(res, 0.005, 0.01)["winner_index"] == 1
