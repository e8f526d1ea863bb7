"""Data-parallel scaling on the CPU: the real path (torchrun's launcher, 2 gloo ranks,
DistributedDataParallel, sharded device-resident data) on a few dozen synthetic images; a rank
killed mid-run ends the launch with one line naming it; the worker environment keeps NVLink
multicast off; the section's summary, table and figure."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from common.workloads.distributed_launch import (
    REPO,
    RankFailure,
    Rendezvous,
    _stop,
    _wait,
    failure_message,
    launch,
    parse_failures,
    torchrun_command,
    worker_env,
)

MULTICAST_OFF = {"NCCL_NVLS_ENABLE": "0", "TORCH_SYMM_MEM_DISABLE_MULTICAST": "1", "NVSHMEM_DISABLE_NVLS": "1"}


def tiny_spec(data_dir: Path, **over) -> dict:
    spec = {"device": "cpu", "threads": 1, "seed": 0,
            "data": {"data_dir": str(data_dir), "val_fraction": 0.1, "test_fraction": 0.1, "split_seed": 0,
                     "max_train": 32, "max_eval": None},
            "per_rank_batch": 4, "strong_per_rank_batch": 2, "base_lr": 1e-3, "base_batch": 300, "epochs": 1,
            "target": 0.99, "precision": "fp32", "channels_last": True, "cudnn_benchmark": False, "graph": "cuda_graph",
            "ddp": {"bucket_cap_mb": 25, "gradient_as_bucket_view": True, "static_graph": False},
            "warmup_steps": 0, "steps": 1, "repeats": 2, "comm_steps": 2, "sample_hz": 20.0,
            "collective_timeout_s": 60.0}
    spec.update(over)
    return spec


@pytest.fixture(scope="module")
def two_ranks(synthetic_data_dir, tmp_path_factory):
    """One real 2-rank gloo run: (result, log path)."""
    log = tmp_path_factory.mktemp("scaling") / "run.log"
    return launch(tiny_spec(synthetic_data_dir), 2, log, timeout_s=300), log


def test_worker_environment_keeps_multicast_off_and_sets_threads():
    env = worker_env({"PATH": "/bin", "NCCL_NVLS_ENABLE": "1"}, threads=3)
    assert {k: env[k] for k in MULTICAST_OFF} == MULTICAST_OFF
    assert env["OMP_NUM_THREADS"] == "3" and env["PATH"] == "/bin"
    assert env["PYTHONPATH"].split(":")[0] == str(REPO)
    one = torchrun_command(2, Path("s.json"), Rendezvous())
    assert "--standalone" in one and "--nproc-per-node=2" in one and one[-3:] == ["-m", "common.workloads.distributed",
                                                                                  "s.json"]
    many = torchrun_command(8, Path("s.json"), Rendezvous(2, 1, "10.0.0.1", 29400))
    assert {"--nnodes=2", "--node-rank=1", "--master-addr=10.0.0.1", "--master-port=29400"} <= set(many)
    assert "--standalone" not in many


def test_two_gloo_ranks_train_shard_and_report(two_ranks):
    """Asked for the captured step (the GPU default), CPU ranks run eagerly and say why."""
    res, _ = two_ranks
    assert res["world_size"] == 2 and res["backend"] == "gloo" and res["global_batch"] == 8
    ranks = res["ranks"]
    assert [r["rank"] for r in ranks] == [0, 1]
    for r in ranks:  # every rank's environment had NVLink multicast off
        assert r["env"] == MULTICAST_OFF
    tr = res["training"]
    assert tr["steps_per_epoch"] == 32 // 8 and len(tr["history"]) == 1
    assert tr["test_n"] == res["data"]["test_images"]  # the ranks' evaluation shards add up to the test set
    assert 0.0 <= tr["test_accuracy"] <= 1.0 and tr["history"][0]["since_process_start_s"] > 0
    assert tr["reached"] is (tr["time_to_target_s"] is not None)
    for phase in ("weak", "weak_no_sync", "strong", "strong_no_sync"):
        ips = res["throughput"][phase]["images_per_s"]
        assert ips["n"] == 2 and ips["median"] > 0, phase
    assert res["throughput"]["strong"]["global_batch"] == 4
    assert {w["step"] for w in res["throughput"].values()} == {"none"}
    for st in (res["step"], tr["step"]):
        assert st["graph"] == "none" and "CPU" in st["graph_reason"] and st["graph_requested"] == "cuda_graph"
        assert st["warmup_steps"] == 0 and st["captures"] == []
    assert res["step"]["cudnn_benchmark"] is False and all(r["graph_error"] is None for r in ranks)
    dev = res["throughput"]["weak"]["per_device"]
    assert dev[0]["samples"] >= 1 and "rank 0 samples" in dev[1]["reason"]  # only rank 0 samples the shared CPU
    comm = res["comm"]["weak"]
    import torch

    from common.models import densenet121

    grads = sum(p.numel() * 4 for p in densenet121(6).parameters())
    assert comm["bytes_per_step"] == grads  # every fp32 gradient went through the timed all-reduce
    assert comm["allreduce_s_per_step"]["median"] > 0 and 0 < comm["allreduce_in_flight_share"] <= 1
    assert 0 <= comm["exposed_share"] < 1 and comm["exposed_reason"] is None
    assert comm["method"].startswith("DDP communication hook")
    assert torch.get_num_threads() >= 1


def test_a_killed_rank_is_named_and_nothing_is_returned(synthetic_data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("SUITE_SCALING_FAIL", "1:1")
    with pytest.raises(RankFailure) as err:
        launch(tiny_spec(synthetic_data_dir, epochs=3), 2, tmp_path / "run.log", timeout_s=300)
    msg = str(err.value)
    assert "\n" not in msg
    assert "rank 1 (local rank 1) failed with exit code 1 during training epoch 1/3" in msg, msg
    assert "no record written" in msg and str(tmp_path / "run.log") in msg


AGENT_REPORT = """
Failures:
[1]:
  time      : 2026-11-30_14:27:18
  host      : localhost
  rank      : 0 (local_rank: 0)
  exitcode  : 1 (pid: 10066)
------------------------------------------------------------
Root Cause (first observed failure):
[0]:
  time      : 2026-11-30_14:27:18
  host      : localhost
  rank      : 3 (local_rank: 1)
  exitcode  : -9 (pid: 10067)
"""


def test_failure_message_blames_the_rank_that_died_not_its_peers(tmp_path):
    (tmp_path / "errors").mkdir()
    (tmp_path / "errors" / "rank0.txt").write_text("RuntimeError: Connection closed by peer [127.0.0.1]:4505\n")
    (tmp_path / "phase").mkdir()
    (tmp_path / "phase" / "rank3.txt").write_text("timing weak windows (batch 512 per rank)")
    assert [f["rank"] for f in parse_failures(AGENT_REPORT)] == [0, 3]
    msg = failure_message(AGENT_REPORT, tmp_path, 4, 1, tmp_path / "log")
    assert "rank 3 (local rank 1) failed with signal 9 (SIGKILL) during timing weak windows" in msg, msg
    assert "ended abruptly" in msg
    assert "torchrun exited with code 1" in failure_message("", tmp_path, 4, 1, tmp_path / "log")


def test_counts_and_summary_table_and_figure(two_ranks, tmp_path):
    from common.records import Record
    from common.sections.scaling.measure import counts_for, summarise, table
    from common.sections.scaling.plot import plot

    assert counts_for(1) == [1] and counts_for(2) == [1, 2] and counts_for(6) == [1, 2, 4, 6]
    two, _ = two_ranks
    one = copy.deepcopy(two)  # the arithmetic only: a 1-worker run twice as slow as the 2-worker one
    for w in one["throughput"].values():
        w["images_per_s"]["values"] = [v / 2 for v in w["images_per_s"]["values"]]
        w["images_per_s"]["median"] /= 2
    one["comm"] = {}

    class S:
        scaling = {"nnodes": 1, "node_rank": 0, "scaling_cpu_procs": (1, 2)}

    p = {"unit": "process", "notes": [], "batch": 4, "cores": 2}
    data = summarise("cpu", {"1": one, "2": two}, p, S())
    assert data["available"] and [r["workers"] for r in data["rows"]] == [1, 2]
    assert data["rows"][1]["weak_efficiency"]["value"] == pytest.approx(1.0)
    assert data["rows"][1]["comm_in_flight_share"] is not None and data["rows"][0]["comm_in_flight_share"] is None
    assert [r["step"] for r in data["rows"]] == ["none", "none"] and "CPU" in data["rows"][1]["graph_reason"]
    text = table(data)
    assert "weak eff" in text and "| eager |" in text and len(text.splitlines()) == 4
    json.dumps(data, allow_nan=False)
    rec = Record(kind="scaling", device="cpu", data=data)
    figs = plot(rec, None, tmp_path, lambda b: f"cpu_{b}")
    assert [f.name for f in figs] == ["cpu_scaling.png"] and figs[0].stat().st_size > 10_000
    single = summarise("cpu", {"1": one}, p, S())
    assert not single["available"] and "not measurable" in single["reason"]
    assert plot(Record(kind="scaling", device="cpu", data=single), None, tmp_path, lambda b: f"one_{b}")[0].exists()


def test_rendezvous_flags_are_checked_and_only_the_gpu_parser_has_them():
    from common.analysis.engine import build_parser
    from common.cli import validate_config
    from common.errors import UserError

    gpu = build_parser("cuda").parse_args(["--gpus", "2", "--nnodes", "2", "--node-rank", "1",
                                           "--master-addr", "h0", "--master-port", "29400"])
    assert (gpu.SCALING_GPUS, gpu.NNODES, gpu.NODE_RANK, gpu.MASTER_ADDR, gpu.MASTER_PORT) == (2, 2, 1, "h0", 29400)
    with pytest.raises(SystemExit):
        build_parser("cpu").parse_args(["--gpus", "2"])
    for bad, text in (({"NNODES": 2, "MASTER_ADDR": None}, "--master-addr"),
                      ({"NNODES": 2, "NODE_RANK": 2, "MASTER_ADDR": "h"}, "NODE_RANK"),
                      ({"SCALING_GPUS": 0}, "SCALING_GPUS"), ({"MASTER_PORT": 70000}, "MASTER_PORT")):
        with pytest.raises(UserError, match=text):
            validate_config({"NNODES": 1, "NODE_RANK": 0, "MASTER_PORT": 29500, **bad})


@pytest.mark.gpu
def test_nccl_ranks_time_their_allreduce_and_sample_their_own_gpu(synthetic_data_dir, tmp_path):
    """On a machine with 2+ GPUs: the NCCL path, CUDA-event all-reduce timing, NVML per rank."""
    import torch

    n = min(2, torch.cuda.device_count())
    spec = tiny_spec(synthetic_data_dir, device="cuda", precision="bf16", cudnn_benchmark=True, per_rank_batch=8,
                     strong_per_rank_batch=4, max_train=None, steps=2, comm_steps=3, graph="none")
    res = launch(spec, n, tmp_path / "run.log", timeout_s=300)
    assert res["world_size"] == n and res["backend"] == ("nccl" if n > 1 else None)
    devs = res["throughput"]["weak"]["per_device"]
    assert len({d["nvml_index"] for d in devs}) == n  # each rank its own GPU
    assert all(d["samples"] >= 0 and d.get("energy_j") is not None for d in devs), devs
    if n > 1:
        comm = res["comm"]["weak"]
        assert comm["bytes_per_step"] > 20e6 and comm["allreduce_s_per_step"]["median"] > 0, comm


@pytest.mark.gpu
def test_nccl_ranks_replay_their_captured_step_with_the_allreduce_inside(synthetic_data_dir, tmp_path):
    """On a machine with 2+ GPUs: the default GPU step, whole step captured per rank (DDP's all-reduce
    inside), 11 eager warm-up steps during training, then replays; no_sync captured too, so the exposed
    share compares graph with graph; nothing fell back."""
    import torch

    from common.workloads.distributed_graph import COMM_GRAPH, DDP_WARMUP_STEPS

    n = min(2, torch.cuda.device_count())
    spec = tiny_spec(synthetic_data_dir, device="cuda", precision="bf16", per_rank_batch=8, strong_per_rank_batch=4,
                     max_train=None, steps=3, epochs=8)  # more steps than the warm-up
    res = launch(spec, n, tmp_path / "run.log", timeout_s=300)
    st, tr = res["step"], res["training"]["step"]
    assert st["graph"] == "cuda_graph" and st["graph_reason"] is None and st["graph_errors"] == [], st
    assert tr["warmup_steps"] == DDP_WARMUP_STEPS and tr["capture_s"] > 0, tr
    assert tr["captured_since_process_start_s"] > 0 and st["captures"][0]["during"].startswith("training")
    assert {w["step"] for w in res["throughput"].values()} == {"cuda_graph"}
    losses = [h["train_loss"] for h in res["training"]["history"]]
    assert losses[-1] < losses[0], losses  # the replays trained the model
    if n > 1:
        assert st["nccl_env"] == {"TORCH_NCCL_ASYNC_ERROR_HANDLING": "0", "NCCL_ASYNC_ERROR_HANDLING": "0"}
        comm = res["comm"]["weak"]
        assert comm["method"] == COMM_GRAPH and comm["exposed_share"] is not None and comm["bytes_per_step"] > 20e6
        assert len(st["captures"]) == 4  # weak (training), weak no_sync, strong, strong no_sync


def _hanging_launcher(tmp: Path, done: bool) -> subprocess.Popen:
    """A stand-in for torchrun whose ranks finish (or not) and whose teardown never ends."""
    script = (f"import pathlib, time\nt = pathlib.Path({str(tmp)!r})\n(t / 'phase').mkdir()\n"
              f"(t / 'result.json').write_text('{{}}')\n"
              + "".join(f"(t / 'phase' / 'rank{r}.txt').write_text({'done' if done else 'training'!r})\n"
                        for r in range(2))
              + "time.sleep(60)\n")
    return subprocess.Popen([sys.executable, "-c", script], start_new_session=True)


def test_a_teardown_that_hangs_after_the_record_is_stopped_and_said(tmp_path):
    # pytorch#115388: with captured NCCL work, destroy_process_group can hang after the ranks are done
    proc = _hanging_launcher(tmp_path, done=True)
    t = time.monotonic()
    rc, teardown = _wait(proc, tmp_path, nproc=2, timeout_s=30, grace_s=1.0)
    assert time.monotonic() - t < 20 and proc.poll() is not None
    assert rc != 0 and "teardown" in teardown and "record was written" in teardown


def test_ranks_that_never_finish_run_into_the_timeout(tmp_path):
    proc = _hanging_launcher(tmp_path, done=False)
    rc, teardown = _wait(proc, tmp_path, nproc=2, timeout_s=3, grace_s=0.5)
    assert rc is None and teardown is None
    _stop(proc)
