"""common.workloads.ladder: the rungs each device gets, the CPU's probe rungs, and a probe
that trains the fastest candidate it measured."""

from __future__ import annotations

import pytest
import torch

import config
from common.workloads.ladder import (
    TUTORIAL_LR,
    TUTORIAL_STEPS,
    batch_candidates,
    default_rungs,
    format_candidates,
    thread_candidates,
)
from common.workloads.levers import Levers
from common.workloads.mednist_data import MedNISTData, load_mednist

CPU = torch.device("cpu")


def test_cpu_default_ladder_ends_in_probes_and_quick_has_none():
    rungs, _ = default_rungs(CPU, 300, 4, quick=False)
    assert [r.id for r in rungs] == ["recipe", "lr_schedule", "device_resident", "threads", "format"]
    assert [r.name for r in rungs if r.candidates] == ["threads", "precision x memory format"]
    # the CPU's recipe is the tutorial's optimizer, but its budget stays the CPU's, and the notes say so
    cpu_notes = default_rungs(CPU, 300, 4, quick=False)[1]
    assert rungs[0].levers.lr == TUTORIAL_LR and rungs[0].min_steps == 0 and any("CPU_EPOCHS" in n for n in cpu_notes)
    quick, _ = default_rungs(CPU, 32, 1, quick=True)
    assert not any(r.candidates for r in quick)
    assert quick[-1].levers.channels_last


def test_gpu_ladder_ids_are_stable_and_the_compiled_rung_is_optional(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    gpu = torch.device("cuda")
    rungs, _ = default_rungs(gpu, 300, 10, quick=False, compiled=False)
    assert [r.id for r in rungs] == ["recipe", "lr_schedule", "device_resident", "bf16_channels_last", "cuda_graph",
                                     "cuda_graph_prewarm", "gemm_1x1", "schedule", "schedule_b150",
                                     "cuda_graph_autotune", "cuda_graph_b1024"]
    rungs = rungs[:1] + rungs[2:]  # the indices below are the levers after the learning-rate rung
    # the recipe is MONAI's tutorial as written: Adam at 1e-5, constant, for the tutorial's own length
    assert rungs[0].levers.lr == TUTORIAL_LR == 1e-5 and rungs[0].levers.lr_schedule == "constant"
    assert rungs[0].min_steps == TUTORIAL_STEPS == 632 and all(r.min_steps == 0 for r in rungs[1:])
    lr_rung = default_rungs(gpu, 300, 10, quick=False, compiled=False)[0][1]
    assert lr_rung.levers.diff(rungs[0].levers) == {"lr": (None, 1e-5), "lr_schedule": ("warmup_cosine", "constant")}
    assert rungs[1].levers.lr is None and rungs[1].levers.lr_schedule == "warmup_cosine"
    assert rungs[8].levers.cudnn_benchmark and not rungs[3].levers.cudnn_benchmark
    assert rungs[4].levers.diff(rungs[3].levers) == {"prewarm": (True, False)}  # one lever at a time
    assert rungs[5].levers.diff(rungs[4].levers) == {"gemm_1x1": (True, False)}
    assert rungs[6].levers.diff(rungs[5].levers) == {"schedule_epochs": (1.5, None)}  # chosen on validation, run AC
    assert rungs[7].levers.diff(rungs[5].levers) == {"batch_size": (150, 300), "schedule_epochs": (1.0, None)}
    assert rungs[9].levers.schedule_epochs is None  # no schedule qualified at batch 1024
    odd, notes = default_rungs(gpu, 256, 10, quick=True)  # a batch no schedule was chosen for: said, not guessed
    assert "schedule" not in [r.id for r in odd] and any("batch 256 left out" in n for n in notes)
    assert not rungs[0].levers.cudnn_benchmark  # the tutorial as written sets no cuDNN autotuning
    full, notes = default_rungs(gpu, 300, 10, quick=False, compiled=True)
    assert full[-1].id == "compiled_leader" and full[-1].seeds_cap == 1 and full[-1].levers.concat_free
    quick, _ = default_rungs(gpu, 300, 10, quick=True)
    assert [r.id for r in quick][-1] == "cuda_graph_autotune"


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




def test_the_ladder_schedules_are_the_ones_its_record_chose_on_the_validation_split():
    """CHOSEN_SCHEDULES is what benchmarks/schedule_probe.py's rule picks from the committed run AC
    (applied again here), never a number typed in apart from it."""
    from pathlib import Path

    from benchmarks.schedule_probe import from_records
    from common.workloads.ladder import CHOSEN_SCHEDULES, CHOSEN_SCHEDULES_FROM

    record = Path(__file__).resolve().parents[2] / "docs" / "records" / "schedule_probe_run_AC.json"
    assert record.name in CHOSEN_SCHEDULES_FROM
    merged = from_records([str(record)], None, None)["batches"]
    chosen = {int(b): d["chosen_schedule"] for b, d in merged.items() if d["chosen_schedule"] is not None}
    assert chosen == CHOSEN_SCHEDULES
    assert all(d["chosen_lr_mult"] == 1.0 for b, d in merged.items() if d["chosen"] is not None)
    for d in merged.values():  # chosen on validation accuracy with the stated margin, on every seed
        for r in d["candidates"]:
            assert r["eligible"] == (min(r["val_at_schedule_end"]) >= d["target"] + d["margin"])
            assert r["seeds"] == [100, 101, 102, 103, 104]  # not the ladder's seeds
