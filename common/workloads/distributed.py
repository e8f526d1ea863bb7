"""One rank of data-parallel MedNIST training, run by torchrun (``torch.distributed.run``):

    python -m torch.distributed.run --nproc-per-node N -m common.workloads.distributed SPEC.json

(``common.workloads.distributed_launch`` builds that command, its environment and SPEC.json).
Every rank holds the training set on its device (uint8), draws each epoch's permutation from the
run's seed (the same on every rank) and gathers its own shard of every global batch; batched
device augmentation (its own random stream per rank), DenseNet121, bf16 autocast and channels_last
on a GPU, Adam, all wrapped in DistributedDataParallel (NCCL on GPUs, gloo on CPUs; one process is
trained without the wrapper: there is nothing to communicate). On GPUs with ``graph = "cuda_graph"``
(the default, the single-GPU winner's step) every rank replays its whole step from a CUDA graph,
DDP's all-reduce included (``common.workloads.distributed_graph``). The rank:

1. trains to ``target`` validation accuracy or for ``epochs`` (warm-up + cosine learning rate),
   its clock running from its process's start (every one-time cost counted), then tests;
2. times ``repeats`` windows of ``steps`` steps at its batch (barrier + device sync at the window
   edges) on its own device's energy counter, the same windows without gradient synchronization
   (``no_sync``: what communication costs the step; captured too where the step is), and, where the
   step runs eagerly, a few steps with the all-reduce timed by a communication hook; then the same
   at the strong-scaling batch, where one is given;
3. samples only its own device (NVML on its GPU; on CPUs rank 0 samples the CPU they share).

Rank 0 gathers every rank's results and writes SPEC['out'] atomically; a rank that fails writes
``errors/rank<R>.txt`` beside it and exits non-zero (the launcher names it). Test hook: the
environment variable ``SUITE_SCALING_FAIL=R:K`` makes rank R exit (code 1) after step K.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F

from common.atomic import write_json, write_text
from common.measure.stats import Summary
from common.measure.timing import clock
from common.models import densenet121
from common.transforms import BatchedAugment2D, scale_intensity
from common.workloads.distributed_graph import (
    COMM_GRAPH,
    COMM_HOOK,
    GRAPH_NCCL_ENV,
    GraphSteps,
    graph_choice,
    registers_generators,
)
from common.workloads.distributed_parts import (
    NO_MULTICAST_ENV,
    CommTimer,
    DeviceProbe,
    Rank,
    Shards,
    _process_start,
    timed_allreduce,
)
from common.workloads.training import autocast_ctx, lr_at, scaled_lr, set_lr

EVAL_BATCH = 512
LR_RULE = ("Adam learning rate scaled by sqrt(global batch / BATCH_SIZE) from LEARNING_RATE (Malladi et al. 2022), "
           "linear warm-up over 5% of the steps, cosine decay to 5%")


class Job:
    """Model, optimizer and data of this rank, built once; trained, then timed."""

    def __init__(self, spec: dict[str, Any], r: Rank, t0: float | None = None):
        self.spec, self.r = spec, r
        self.t0 = time.time() if t0 is None else t0  # this process's start: the clock of time to target
        self.startup: dict[str, float] = {}
        from torch.nn.parallel import DistributedDataParallel as DDP

        self.graph, self.graph_reason = graph_choice(spec.get("graph", "none"), r.cuda, r.world,
                                                     _nccl_version() if r.cuda and r.world > 1 else None,
                                                     hasattr(DDP, "_remove_autograd_hooks"))
        if self.graph == "cuda_graph":  # PyTorch's DDP capture recipe: before the process group starts
            os.environ.update(GRAPH_NCCL_ENV)
        a = clock()
        r.phase("init process group")
        r.init(spec["collective_timeout_s"])
        self.startup["init_process_group_s"] = clock() - a
        self.probe = DeviceProbe(r, spec["sample_hz"])
        self._load_data()
        a = clock()
        r.phase("build model")
        dev = r.device
        torch.backends.cudnn.benchmark = bool(spec["cudnn_benchmark"])
        torch.manual_seed(spec["seed"])  # the same initialisation on every rank (DDP also broadcasts rank 0's)
        model = densenet121(6).to(dev)
        if spec["channels_last"]:
            model = model.to(memory_format=torch.channels_last)
        graphed = self.graph == "cuda_graph"
        self.model, self.net, self.comm = model, model, None
        self.side = torch.cuda.Stream(dev) if graphed else None  # DDP built, warmed up and captured on it
        self.gen: torch.Generator | None = torch.Generator(device=dev).manual_seed(self._gen_seed())
        if graphed and not registers_generators():  # the default generator is graph-safe in every torch
            torch.cuda.manual_seed(self._gen_seed())
            self.gen = None
        if r.distributed:
            self.net = self._wrap(self.side, hook=not graphed)
        self.global_batch = spec["per_rank_batch"] * r.world
        self.lr = scaled_lr(spec["base_lr"], spec["base_batch"], self.global_batch)
        kw: dict[str, Any] = {"fused": True} if r.cuda else {}
        if graphed:  # the captured step reads its learning rate from device memory, filled before each replay
            kw.update(capturable=True, lr=torch.tensor(self.lr, dtype=torch.float32, device=dev))
        self.opt = torch.optim.Adam(model.parameters(), **{"lr": self.lr, **kw})
        self.augment = BatchedAugment2D().to(dev)
        self.graphs = GraphSteps(self) if graphed else None
        self.steps_done = 0
        self.startup["model_s"] = clock() - a

    def _gen_seed(self) -> int:
        return self.spec["seed"] * 1000 + 17 + self.r.rank  # a random stream of its own per rank

    def _wrap(self, side: torch.cuda.Stream | None, hook: bool):
        """DDP around the model: constructed in the side-stream context where the step is captured
        (PyTorch's recipe); with the timed all-reduce hook where the step runs eagerly."""
        from torch.nn.parallel import DistributedDataParallel as DDP

        r = self.r
        with torch.cuda.stream(side) if side is not None else contextlib.nullcontext():
            net = DDP(self.model, device_ids=[r.local_rank] if r.cuda else None, broadcast_buffers=False,
                      **self.spec["ddp"])
        if side is not None:
            torch.cuda.current_stream(r.device).wait_stream(side)
        self.comm = CommTimer(r.device, r.world) if hook else None
        if hook:
            net.register_comm_hook(self.comm, timed_allreduce)
        return net

    def to_eager(self) -> None:
        """After a capture failed on any rank: the eager step from a clean state. The captured DDP's
        reducer may have stopped mid-backward, so its hooks go and a fresh DDP (timed hook) takes over;
        the registered generator may be left mid-capture, so augmentation draws from a fresh one."""
        self.r.sync()
        self.opt.zero_grad(set_to_none=True)
        if self.r.distributed:
            self.net._remove_autograd_hooks()
            self.net = self._wrap(None, hook=True)
        self.gen = torch.Generator(device=self.r.device).manual_seed(self._gen_seed())

    def _load_data(self) -> None:
        from common.workloads.mednist_data import load_mednist

        s, r = self.spec["data"], self.r
        a = clock()
        r.phase("load data")
        data = load_mednist(s["data_dir"], s["val_fraction"], s["test_fraction"], s["split_seed"],
                            max_train=s["max_train"], max_eval=s["max_eval"])
        parts = {p: data.arrays(p) for p in ("train", "val", "test")}
        self.startup["data_s"] = clock() - a
        a = clock()
        dev = r.device

        def put(imgs, labs, shard: bool):
            sl = slice(r.rank, None, r.world) if shard else slice(None)
            return (torch.from_numpy(imgs[sl]).unsqueeze(1).to(dev), torch.from_numpy(labs[sl]).to(dev))

        self.train_x, self.train_y = put(*parts["train"], shard=False)  # every rank gathers its shards from all
        self.val = put(*parts["val"], shard=True)  # evaluation: each rank its share, counts summed
        self.test = put(*parts["test"], shard=True)
        r.sync()
        self.startup["upload_s"] = clock() - a
        self.data_info = {"train_images": len(parts["train"][1]), "val_images": len(parts["val"][1]),
                          "test_images": len(parts["test"][1]), "dataset": data.source,
                          "skipped_images": len(data.skipped)}

    # -- one step, evaluation ---------------------------------------------------------------------
    def loss(self, idx: torch.Tensor, cache: bool = True) -> torch.Tensor:
        """Gather, scale, augment, forward: the loss of the batch ``idx`` (autocast's cache off where
        the step is captured)."""
        x = self.augment(scale_intensity(self.train_x[idx]), generator=self.gen)
        y = self.train_y[idx]
        if self.spec["channels_last"]:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast_ctx(self.r.device, self.spec["precision"], cache_enabled=cache):
            return F.cross_entropy(self.net(x).float(), y)

    def sync_ctx(self, no_sync: bool):
        return self.net.no_sync() if no_sync and self.r.distributed else contextlib.nullcontext()

    def eager_step(self, idx: torch.Tensor, no_sync: bool = False, cache: bool = True) -> torch.Tensor:
        with self.sync_ctx(no_sync):
            loss = self.loss(idx, cache)
            loss.backward()
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        return loss.detach()

    def step(self, idx: torch.Tensor, lr: float | None = None, no_sync: bool = False) -> torch.Tensor:
        """One training step: replayed from its graph where captured (eager warm-up steps first), else eager."""
        if lr is not None:
            set_lr(self.opt, lr)
        g = self.graphs
        loss = g.step(idx, no_sync) if g is not None and g.active else self.eager_step(idx, no_sync)
        self.steps_done += 1
        self.r.after_step(self.steps_done)
        return loss

    def step_kind(self) -> str:
        return "cuda_graph" if self.graphs is not None and self.graphs.active else "none"

    def _average_buffers(self) -> None:
        """Batch-norm running statistics averaged over the ranks (each saw its own shards)."""
        if not self.r.distributed:
            return
        bufs = [b for b in self.model.buffers() if b.dtype.is_floating_point]
        flat = torch._utils._flatten_dense_tensors(bufs)
        self.r.sum_(flat).div_(self.r.world)
        for b, v in zip(bufs, torch._utils._unflatten_dense_tensors(flat, bufs)):
            b.copy_(v)

    @torch.no_grad()
    def evaluate(self, part: tuple[torch.Tensor, torch.Tensor]) -> dict[str, float]:
        self._average_buffers()
        bench = torch.backends.cudnn.benchmark
        torch.backends.cudnn.benchmark = False  # evaluation shapes are not worth seconds of autotuning
        self.model.eval()
        acc = torch.zeros(3, dtype=torch.float64, device=self.r.device)
        xs, ys = part
        for i in range(0, len(ys), EVAL_BATCH):
            x, y = scale_intensity(xs[i:i + EVAL_BATCH]), ys[i:i + EVAL_BATCH]
            if self.spec["channels_last"]:
                x = x.contiguous(memory_format=torch.channels_last)
            with autocast_ctx(self.r.device, self.spec["precision"]):
                out = self.model(x).float()
            acc[0] += (out.argmax(1) == y).sum()
            acc[1] += F.cross_entropy(out, y, reduction="sum")
            acc[2] += y.shape[0]
        self.model.train()
        torch.backends.cudnn.benchmark = bench
        correct, loss, n = self.r.sum_(acc).tolist()
        return {"accuracy": correct / n if n else float("nan"), "loss": loss / max(n, 1), "n": int(n)}

    # -- training to the target -----------------------------------------------------------------------
    def train(self, t0: float) -> dict[str, Any]:
        spec, r = self.spec, self.r
        sh = Shards(len(self.train_y), spec["per_rank_batch"], r, spec["seed"])
        epochs, target = spec["epochs"], spec["target"]
        total = epochs * sh.steps_per_epoch
        history, reached, train_s, i = [], None, 0.0, 0
        for epoch in range(1, epochs + 1):
            r.phase(f"training epoch {epoch}/{epochs}")
            r.sync()
            a = clock()
            losses = []
            for idx in sh.epoch(epoch):
                losses.append(self.step(idx, lr_at(i, total, self.lr)))
                i += 1
            r.sync()
            dt = clock() - a
            train_s += dt
            loss = self.r.sum_(torch.stack(losses).double().mean().reshape(1)).item() / r.world
            val = self.evaluate(self.val)
            now = time.time()
            history.append({"epoch": epoch, "train_s": dt, "images": sh.global_batch * sh.steps_per_epoch,
                            "images_per_s": sh.global_batch * sh.steps_per_epoch / dt, "train_loss": loss,
                            "val_accuracy": val["accuracy"], "val_loss": val["loss"],
                            "since_process_start_s": now - t0})
            if val["accuracy"] >= target:
                reached = {"epoch": epoch, "since_process_start_s": now - t0,
                           "since_launch_s": now - spec["launched_at"], "train_s": train_s}
                break
        r.phase("test")
        test = self.evaluate(self.test)
        return {"epochs_budget": epochs, "target_val_accuracy": target, "history": history,
                "reached": reached is not None, "time_to_target_s": reached and reached["since_process_start_s"],
                "time_to_target_from_launch_s": reached and reached["since_launch_s"],
                "train_s_to_target": reached and reached["train_s"], "epochs_to_target": reached and reached["epoch"],
                "target_reason": None if reached else f"validation accuracy stayed below {target} in {epochs} epochs",
                "train_s_total": train_s, "final_val_accuracy": history[-1]["val_accuracy"] if history else None,
                "test_accuracy": test["accuracy"], "test_n": test["n"], "lr": self.lr,
                "steps_per_epoch": sh.steps_per_epoch, "global_batch": sh.global_batch,
                "step": self.graphs.training_info(i) if self.graphs is not None else self.step_record([])}

    # -- timed windows ---------------------------------------------------------------------------------
    def windows(self, per_rank: int, no_sync: bool = False) -> dict[str, Any]:
        spec, r = self.spec, self.r
        sh = Shards(len(self.train_y), per_rank, r, spec["seed"])
        if sh.steps_per_epoch < 1:
            raise ValueError(f"{len(self.train_y)} training images hold no global batch of {sh.global_batch}")
        stream = sh.stream(first_epoch=100_000 + per_rank)

        def run(k: int) -> None:
            for _ in range(k):
                self.step(next(stream), no_sync=no_sync)

        run(spec["warmup_steps"])
        durations, readings, spans = [], [], []
        for _ in range(spec["repeats"]):
            r.barrier()
            e0, a = self.probe.read(), clock()
            run(spec["steps"])
            r.barrier()
            b, e1 = clock(), self.probe.read()
            durations.append(b - a)
            readings.append((e0, e1))
            spans.append((a, b))
        if no_sync and r.distributed:  # the replicas drifted apart: rank 0's weights again for all
            self._rebroadcast()
        energy, reason = self.probe.energy(readings)
        return {"per_rank_batch": per_rank, "global_batch": sh.global_batch, "steps": spec["steps"],
                "no_sync": no_sync, "step": self.step_kind(), "window_s": durations,
                "rank_images_per_window": per_rank * spec["steps"],
                "energy_j": energy, "energy_reason": reason, "usage": self.probe.usage(spans)}

    def _rebroadcast(self) -> None:
        """Rank 0's weights on every rank, copied in place (captured graphs keep their addresses)."""
        params = [p.data for p in self.model.parameters()]
        flat = torch._utils._flatten_dense_tensors(params)
        dist.broadcast(flat, 0)
        for p, v in zip(params, torch._utils._unflatten_dense_tensors(flat, params)):
            p.copy_(v)

    def comm_steps(self, per_rank: int) -> dict[str, Any] | None:
        if not self.r.distributed:
            return None
        if self.comm is None:  # captured steps: no Python hook runs inside a graph
            nbytes = sum(p.numel() * p.element_size() for p in self.model.parameters() if p.requires_grad)
            return {"method": COMM_GRAPH, "share": None, "allreduce_s": [], "step_s": [], "bytes_per_step": [nbytes],
                    "buckets_per_step": [None]}
        stream = Shards(len(self.train_y), per_rank, self.r, self.spec["seed"]).stream(first_epoch=200_000)
        for _ in range(self.spec["comm_steps"]):
            self.comm.begin_step()
            self.step(next(stream))
            self.comm.end_step()
        self.r.sync()
        return {**self.comm.summary(), "method": COMM_HOOK}

    def measure(self) -> dict[str, Any]:
        spec, r = self.spec, self.r
        batches = {"weak": spec["per_rank_batch"]}
        if spec.get("strong_per_rank_batch") and r.world > 1:
            batches["strong"] = spec["strong_per_rank_batch"]
        phases, comm = {}, {}
        for name, b in batches.items():
            r.phase(f"timing {name} windows (batch {b} per rank)")
            if self.graphs is not None and self.graphs.active:  # both windows of the pair replay graphs
                warm = Shards(len(self.train_y), b, r, spec["seed"]).stream(first_epoch=300_000 + b)
                self.graphs.prepare(b, warm, pair=r.distributed)
                if r.distributed:  # the no_sync warm-up steps let the replicas drift apart
                    self._rebroadcast()
            phases[name] = self.windows(b)
            if r.distributed:
                phases[f"{name}_no_sync"] = self.windows(b, no_sync=True)
                comm[name] = self.comm_steps(b)
        return {"phases": phases, "comm": comm}

    def rank_result(self, timed: dict[str, Any]) -> dict[str, Any]:
        r = self.r
        return {"rank": r.rank, "local_rank": r.local_rank, "host": socket.gethostname(), "pid": os.getpid(),
                "device": str(r.device), "device_name": torch.cuda.get_device_name(r.device) if r.cuda else "cpu",
                "nvml_index": self.probe.nvml_index, "threads": torch.get_num_threads(),
                "env": {k: os.environ.get(k) for k in NO_MULTICAST_ENV}, "startup_s": self.startup,
                "peak_memory_mib": torch.cuda.max_memory_allocated(r.device) / 2**20 if r.cuda else None,
                "graph_error": self.graphs.error if self.graphs is not None else None, **timed}

    def step_record(self, ranks: list[dict[str, Any]]) -> dict[str, Any]:
        """The step this run used (per phase in ``throughput``), its warm-up and captures, why not a graph."""
        base = {"graph_requested": self.spec.get("graph", "none"),
                "cudnn_benchmark": bool(self.spec["cudnn_benchmark"])}
        if self.graphs is None:
            return {**base, "graph": "none", "graph_reason": self.graph_reason, "warmup_steps": 0, "captures": [],
                    "comm_method": COMM_HOOK if self.r.world > 1 else None}
        errors = [f"rank {x['rank']}: {x['graph_error']}" for x in ranks if x.get("graph_error")]
        return {**base, **self.graphs.info, "graph_errors": errors,
                "nccl_env": {k: os.environ.get(k) for k in GRAPH_NCCL_ENV} if self.r.world > 1 else None}


def _devices(name: str, w: dict[str, Any], ranks: list[dict[str, Any]], cuda: bool) -> list[dict[str, Any]]:
    """Each rank's own device over the windows of phase ``name``: usage, joules, J/image (a GPU's
    counter covers its rank's images; the CPU's, read by rank 0, every rank's)."""
    images = w["rank_images_per_window"] * len(w["window_s"]) * (1 if cuda else len(ranks))
    rows = []
    for x in ranks:
        ph = x["phases"][name]
        joules = sum(ph["energy_j"]) if ph["energy_j"] else None
        rows.append({"rank": x["rank"], "host": x["host"], "nvml_index": x["nvml_index"], **ph["usage"],
                     "energy_j": joules, "energy_reason": ph["energy_reason"],
                     "j_per_image": joules / images if joules is not None else None})
    return rows


def _comm(name: str, c: dict[str, Any], throughput: dict[str, Any], ranks: list[dict[str, Any]]) -> dict[str, Any]:
    """Rank 0's timed all-reduces of phase ``name`` (eager steps) and the step time synchronization
    costs: the synchronized windows against the no_sync ones, where both ran the same kind of step."""
    synced, quiet_w = throughput[name], throughput[f"{name}_no_sync"]
    sync, quiet = synced["step_s"]["median"], quiet_w["step_s"]["median"]
    alike = synced.get("step") == quiet_w.get("step")
    shares = [x["comm"][name]["share"] for x in ranks if x["comm"][name]["share"] is not None]
    timed = bool(c["allreduce_s"])
    return {"method": c.get("method", COMM_HOOK), "allreduce_in_flight_share": c["share"],
            "allreduce_in_flight_share_max_rank": max(shares, default=None),
            "allreduce_s_per_step": Summary.from_values(c["allreduce_s"], "s").to_dict() if timed else None,
            "timed_step_s": Summary.from_values(c["step_s"], "s").to_dict() if timed else None,
            "bytes_per_step": c["bytes_per_step"][0], "buckets_per_step": c["buckets_per_step"][0],
            "exposed_share": max(0.0, 1 - quiet / sync) if alike else None,
            "exposed_reason": None if alike else (f"the synchronized windows ran step {synced.get('step')!r}, the "
                                                  f"no_sync ones {quiet_w.get('step')!r}: not comparable"),
            "step_s_with_sync": sync, "step_s_without_sync": quiet}


def compose(spec: dict[str, Any], job: Job, training: dict[str, Any], ranks: list[dict[str, Any]]) -> dict[str, Any]:
    """Rank 0: the run's result from every rank's."""
    r0, cuda = ranks[0], job.r.cuda
    metered = ranks if cuda else ranks[:1]  # on CPUs rank 0's counter covers the shared CPU
    throughput = {}
    for name, w in r0["phases"].items():
        images = w["rank_images_per_window"] * job.r.world
        joules = [sum(x["phases"][name]["energy_j"]) if x["phases"][name]["energy_j"] else None for x in metered]
        ok = all(j is not None for j in joules)
        throughput[name] = {
            "per_rank_batch": w["per_rank_batch"], "global_batch": w["global_batch"], "steps": w["steps"],
            "step": w.get("step"),
            "images_per_s": Summary.from_values([images / d for d in w["window_s"]], "img/s").to_dict(),
            "step_s": Summary.from_values([d / w["steps"] for d in w["window_s"]], "s").to_dict(),
            "j_per_image": sum(joules) / (images * len(w["window_s"])) if ok else None,
            "energy_reason": None if ok else next((x["phases"][name]["energy_reason"] for x in metered
                                                   if x["phases"][name]["energy_reason"]), "no energy counter"),
            "per_device": _devices(name, w, ranks, cuda)}
    comm = {name: _comm(name, c, throughput, ranks) for name, c in (r0.get("comm") or {}).items()}
    return {"world_size": job.r.world, "hosts": sorted({x["host"] for x in ranks}), "device": spec["device"],
            "backend": ("nccl" if cuda else "gloo") if job.r.world > 1 else None,
            "ddp": spec["ddp"] if job.r.world > 1 else None, "per_rank_batch": spec["per_rank_batch"],
            "global_batch": job.global_batch, "lr": job.lr, "lr_rule": LR_RULE, "precision": spec["precision"],
            "channels_last": spec["channels_last"], "threads_per_rank": r0["threads"], "data": job.data_info,
            "step": job.step_record(ranks),
            "startup_s": r0["startup_s"], "training": training, "throughput": throughput, "comm": comm,
            "ranks": ranks}


def run(spec: dict[str, Any], r: Rank, t0: float) -> None:
    job = Job(spec, r, t0)
    job.startup["process_start_to_main_s"] = spec.get("_main_at", t0) - t0
    try:
        training = job.train(t0)
        timed = job.measure()
    finally:
        job.probe.stop()
    mine = job.rank_result(timed)
    ranks = [mine]
    if r.distributed:
        ranks = [None] * r.world if r.rank == 0 else None
        dist.gather_object(mine, ranks, dst=0)
    if r.rank == 0:
        write_json(spec["out"], compose(spec, job, training, ranks))
    if job.graphs is not None:  # a graph holding captured NCCL work makes ncclCommDestroy hang (pytorch#115388)
        job.graphs.release()
    r.phase("done")
    if r.distributed:
        r.barrier()
        dist.destroy_process_group()


def _nccl_version() -> tuple[int, ...] | None:
    try:
        v = torch.cuda.nccl.version()
    except Exception:  # noqa: BLE001 -- no NCCL in this build: the process group will say so
        return None
    return tuple(v) if isinstance(v, tuple) else (v // 1000, v % 1000 // 100, v % 100)


def main(argv: list[str] | None = None) -> int:
    t0 = _process_start()
    argv = sys.argv[1:] if argv is None else argv
    spec = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    from common.models import leave_out_unused_monai_extras

    spec["_process_start_left_out"] = leave_out_unused_monai_extras()  # before MONAI is imported (model_s)
    spec["_main_at"] = time.time()
    r = Rank(spec)
    try:
        run(spec, r, t0)
    except BaseException as exc:
        write_text(r.out.parent / "errors" / f"rank{r.rank}.txt",
                   f"{type(exc).__name__}: {exc}".splitlines()[0][:400] + "\n" + traceback.format_exc())
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
