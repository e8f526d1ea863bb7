"""The captured data-parallel step (common.workloads.distributed_graph) where no GPU can capture:
which step a rank takes, the bookkeeping of warm-up, capture and fallback around a faked capture,
and two real gloo ranks (DistributedDataParallel) that fall back together when one rank's capture
raises. The captured step itself is checked on a GPU (tests/workloads/test_gpu.py)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from common.workloads import distributed_graph as dg
from common.workloads.distributed_launch import REPO


def test_graph_choice_defaults_to_the_captured_step_on_gpus_only():
    assert dg.graph_choice("cuda_graph", cuda=True, world=2, nccl=(2, 21, 5)) == ("cuda_graph", None)
    assert dg.graph_choice("cuda_graph", cuda=True, world=1) == ("cuda_graph", None)
    step, why = dg.graph_choice("cuda_graph", cuda=False, world=2)
    assert step == "none" and "CPU" in why
    step, why = dg.graph_choice("none", cuda=True, world=2)
    assert step == "none" and "SCALING_GRAPH" in why
    step, why = dg.graph_choice("cuda_graph", cuda=True, world=2, nccl=(2, 9, 5))
    assert step == "none" and "2.9.6" in why
    assert dg.graph_choice("cuda_graph", cuda=True, world=2, can_unhook=False)[0] == "none"
    assert dg.graph_choice("cuda_graph", cuda=True, world=1, can_unhook=False)[0] == "cuda_graph"  # no DDP


def test_the_scaling_spec_captures_on_gpus_without_autotuning_and_stays_eager_on_cpus():
    from common.analysis.settings import Settings
    from common.cli import values_from_args
    from common.sections.scaling.measure import spec_for

    gpu = spec_for(Settings.defaults("cuda"), "cuda", 512, 2, 8)
    assert gpu["graph"] == "cuda_graph" and gpu["cudnn_benchmark"] is False
    cpu = spec_for(Settings.defaults("cpu"), "cpu", 32, 2, 1)
    assert cpu["graph"] == "none" and cpu["cudnn_benchmark"] is False
    values = dict(values_from_args(None), SCALING_GRAPH="none", SCALING_CUDNN_BENCHMARK=True)
    eager = spec_for(Settings.resolve(values, "cuda", False), "cuda", 512, 2, 8)
    assert eager["graph"] == "none" and eager["cudnn_benchmark"] is True


class FakeGraph:
    def __init__(self):
        self.replays, self.resets = 0, 0

    def replay(self):
        self.replays += 1

    def reset(self):
        self.resets += 1


class FakeJob:
    """What GraphSteps uses of a rank's Job, on the CPU, one rank."""

    def __init__(self):
        self.r = SimpleNamespace(rank=0, world=1, cuda=False, device=torch.device("cpu"), current="training epoch 1/1",
                                 sum_=lambda t: t, sync=lambda: None)
        self.side, self.gen, self.t0 = None, None, time.time() - 5.0
        self.opt = SimpleNamespace(zero_grad=lambda set_to_none=True: None)
        self.eager, self.eager_calls = 0, []
        self.graphs = dg.GraphSteps(self)

    def eager_step(self, idx, no_sync=False, cache=True):
        self.eager_calls.append((int(idx.numel()), no_sync, cache))
        return torch.tensor(1.0)

    def step(self, idx, lr=None, no_sync=False):
        return self.graphs.step(idx, no_sync) if self.graphs.active else self.eager_step(idx, no_sync)

    def to_eager(self):
        self.eager += 1


def _batches(n):
    while True:
        yield torch.arange(n)


def test_warm_up_capture_then_a_late_capture_failure_turns_every_later_step_eager(monkeypatch, capsys):
    made = []

    def capture(self, key):
        if key[1]:  # the no_sync graph of the timed windows
            raise RuntimeError("operation not permitted when stream is capturing\nmore detail")
        made.append(FakeGraph())
        return dg.Captured(made[-1], torch.zeros(key[0], dtype=torch.long), torch.tensor(0.5))

    monkeypatch.setattr(dg.GraphSteps, "_capture", capture)
    job = FakeJob()
    g = job.graphs
    stream = _batches(4)
    losses = [float(job.step(next(stream))) for _ in range(dg.DDP_WARMUP_STEPS + 3)]
    assert job.eager_calls == [(4, False, False)] * dg.DDP_WARMUP_STEPS  # side-stream warm-up, autocast cache off
    assert losses[:dg.DDP_WARMUP_STEPS] == [1.0] * dg.DDP_WARMUP_STEPS and losses[dg.DDP_WARMUP_STEPS:] == [0.5] * 3
    assert made[0].replays == 3 and g.info["warmup_steps"] == dg.DDP_WARMUP_STEPS and g.info["warmup_s"] >= 0
    trained = g.training_info(total_steps=14)
    assert trained["graph"] == "cuda_graph" and trained["graph_reason"] is None
    assert trained["capture_s"] >= 0 and trained["captured_since_process_start_s"] >= 5.0

    job.r.current = "timing weak windows (batch 4 per rank)"
    g.prepare(4, stream, pair=True)  # the synchronized graph is there; the no_sync one warms up, then fails
    # no_sync warm-up on the side stream, then the failed capture's step itself runs eagerly (autocast cache on)
    assert job.eager_calls[dg.DDP_WARMUP_STEPS:] == [(4, True, False)] * dg.SHAPE_WARMUP_STEPS + [(4, True, True)]
    assert not g.active and g.graphs == {} and made[0].resets == 1 and job.eager == 1
    assert g.error == "RuntimeError: operation not permitted when stream is capturing"
    assert g.error in capsys.readouterr().err  # the rank logs the exception's first line
    assert g.info["graph"] == "cuda_graph"  # training did replay its graph ...
    assert "from there" in g.info["graph_reason"] and "timing weak windows" in g.info["graph_reason"]
    assert g.info["comm_method"] == dg.COMM_HOOK and trained["comm_method"] == dg.COMM_GRAPH
    assert len(trained["captures"]) == 1  # the training record is not changed by later captures


def test_a_first_capture_failure_means_no_graph_for_the_whole_run(monkeypatch):
    def capture(self, key):
        raise ValueError("no capture here")

    monkeypatch.setattr(dg.GraphSteps, "_capture", capture)
    job = FakeJob()
    for idx in [torch.arange(4)] * (dg.DDP_WARMUP_STEPS + 2):
        job.step(idx)
    g = job.graphs
    assert not g.active and job.eager == 1 and len(job.eager_calls) == dg.DDP_WARMUP_STEPS + 2
    info = g.training_info(total_steps=dg.DDP_WARMUP_STEPS + 2)
    assert info["graph"] == "none" and "for the whole run" in info["graph_reason"]
    assert "ValueError: no capture here" in info["graph_reason"] and info["capture_s"] is None


def test_training_shorter_than_the_warm_up_is_recorded_as_eager():
    info = FakeJob().graphs.training_info(total_steps=6)
    assert info["graph"] == "none" and "6 steps" in info["graph_reason"]


CHILD = r"""
import json, os, sys, time
import torch
from common.workloads import distributed_graph as dg
from common.workloads.distributed import Job
from common.workloads.distributed_parts import Rank

spec = json.loads(open(sys.argv[1]).read())
rank = int(os.environ["RANK"])
dg.DDP_WARMUP_STEPS = 2
resets = []

class FakeGraph:
    def reset(self):
        resets.append(1)

def capture(self, key):  # rank 1's capture raises; rank 0's "succeeds" and must be dropped unreplayed
    if rank == 1:
        raise RuntimeError("capture exploded on purpose\nsecond line")
    return dg.Captured(FakeGraph(), torch.zeros(key[0], dtype=torch.long), torch.zeros(()))

dg.GraphSteps._capture = capture
r = Rank(spec)
job = Job(spec, r, time.time())
first_net = job.net
job.graphs = dg.GraphSteps(job)  # the graph path's bookkeeping on gloo ranks, the capture faked
training = job.train(job.t0)
job.probe.stop()
flat = torch.cat([p.detach().flatten() for p in job.model.parameters()])
out = {"training_step": training["step"], "steps": job.steps_done, "resets": len(resets),
       "error": job.graphs.error, "new_ddp": job.net is not first_net, "hooked": job.comm is not None,
       "weights": [float(flat.sum()), float(flat.abs().sum())], "active": job.graphs.active}
open(spec["out"] + f".{rank}", "w").write(json.dumps(out))
torch.distributed.destroy_process_group()
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_gloo_ranks_fall_back_together_when_one_capture_raises(synthetic_data_dir, tmp_path):
    spec = {"device": "cpu", "threads": 1, "seed": 0, "out": str(tmp_path / "result.json"),
            "data": {"data_dir": str(synthetic_data_dir), "val_fraction": 0.1, "test_fraction": 0.1, "split_seed": 0,
                     "max_train": 16, "max_eval": 8},
            "per_rank_batch": 2, "base_lr": 1e-3, "base_batch": 300, "epochs": 1, "target": 0.99,
            "precision": "fp32", "channels_last": True, "cudnn_benchmark": False, "graph": "cuda_graph",
            "ddp": {"bucket_cap_mb": 25, "gradient_as_bucket_view": True, "static_graph": False},
            "sample_hz": 5.0, "collective_timeout_s": 60.0, "launched_at": time.time()}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    (tmp_path / "child.py").write_text(CHILD)
    env = dict(os.environ, WORLD_SIZE="2", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(_free_port()), OMP_NUM_THREADS="1",
               PYTHONPATH=str(REPO))
    procs = [subprocess.Popen([sys.executable, str(tmp_path / "child.py"), str(tmp_path / "spec.json")], cwd=REPO,
                              env=dict(env, RANK=str(k), LOCAL_RANK=str(k)), stderr=subprocess.PIPE, text=True)
             for k in range(2)]
    errs = [p.communicate(timeout=240)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errs
    r0, r1 = (json.loads(Path(f"{spec['out']}.{k}").read_text()) for k in range(2))
    assert "rank 1: CUDA graph capture failed during training epoch 1/1: RuntimeError: capture exploded on purpose" \
        in errs[1]
    assert r1["error"] == "RuntimeError: capture exploded on purpose" and r0["error"] is None
    assert r0["resets"] == 1 and r1["resets"] == 0  # rank 0's captured graph dropped, never replayed
    for r in (r0, r1):
        st = r["training_step"]
        assert st["graph"] == "none" and "for the whole run" in st["graph_reason"] and st["captures"] == []
        assert st["warmup_steps"] == 2 and not r["active"] and r["new_ddp"] and r["hooked"]
        assert r["steps"] == 16 // 4  # every step of the epoch ran: 2 warm-up, then eager after the agreement
    assert "another rank's capture failed" in r0["training_step"]["graph_reason"]
    assert "this rank's capture failed" in r1["training_step"]["graph_reason"]
    assert r0["weights"] == pytest.approx(r1["weights"], rel=1e-6)  # the fresh DDP kept the replicas in step
