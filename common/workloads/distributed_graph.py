"""The whole training step of one data-parallel rank captured in a CUDA graph and replayed
(``SCALING_GRAPH = "cuda_graph"``: the single-GPU winner's lever ``graph='cuda_graph'``), after
PyTorch's recipe for full-backward capture with DistributedDataParallel (notes "CUDA semantics >
CUDA Graphs > Usage with DistributedDataParallel", NCCL >= 2.9.6):

1. NCCL's asynchronous error handling off in the rank's environment before its process group
   starts (``GRAPH_NCCL_ENV``; a hung collective then waits for the launcher's timeout);
2. DDP constructed inside a side-stream context; the same side stream runs the warm-up and the
   capture (``Job``);
3. ``DDP_WARMUP_STEPS`` (11) DDP-enabled eager steps on that stream before the first capture:
   the first real training steps, at their scheduled learning rates, on the clock;
4. gradients set to None, then forward, backward (DDP's bucketed all-reduce inside) and Adam's step
   (capturable; its learning rate a device tensor filled before each replay) captured once.

Before each replay the batch's indices are copied into the graph's static index buffer; the gather,
scaling and random augmentation run inside the graph, their random numbers drawn from the rank's
own generator registered with every graph (``CUDAGraph.register_generator_state``) or, where torch
lacks that, from the default CUDA generator seeded per rank. No Python communication hook runs
inside a graph: the all-reduce's cost is the exposed share of a captured ``no_sync`` step against
the captured synchronized one at the same batch.

A capture that raises: the rank logs the exception's first line, the ranks agree through an
all-reduce of a flag, and if any failed every rank drops all its graphs (none is replayed), wraps the
model in a fresh DDP with the timed hook and runs eagerly from there; the record says which step ran.
"""

from __future__ import annotations

import contextlib
import sys
import time
from dataclasses import dataclass
from typing import Any

import torch

from common.measure.timing import clock

DDP_WARMUP_STEPS = 11  # PyTorch: at least 11 DDP-enabled eager iterations before capture (one GPU too: like with like)
SHAPE_WARMUP_STEPS = 2  # eager steps before a further graph (another batch, or no_sync) of a warmed-up model
GRAPH_NCCL_ENV = {"TORCH_NCCL_ASYNC_ERROR_HANDLING": "0", "NCCL_ASYNC_ERROR_HANDLING": "0"}
MIN_NCCL = (2, 9, 6)
RNG_REGISTERED = "the rank's own generator, registered with every graph (CUDAGraph.register_generator_state)"
RNG_DEFAULT = "the default CUDA generator, seeded per rank (this torch has no CUDAGraph.register_generator_state)"
COMM_GRAPH = ("exposed share: captured no_sync step against the captured synchronized step at the same batch "
              "(no Python hook inside a graph; in-flight share not measured)")
COMM_HOOK = "DDP communication hook timing each bucket's all-reduce (CUDA events / wall clock), eager steps"


def graph_choice(requested: str, cuda: bool, world: int, nccl: tuple[int, ...] | None = None,
                 can_unhook: bool = True) -> tuple[str, str | None]:
    """("cuda_graph" | "none", reason): the step a rank takes, from SCALING_GRAPH and what it runs on."""
    if requested != "cuda_graph":
        return "none", f"SCALING_GRAPH is {requested!r}"
    if not cuda:
        return "none", "CPU ranks: CUDA graphs need a GPU (gloo, eager step)"
    if world > 1 and nccl is not None and tuple(nccl) < MIN_NCCL:
        return "none", f"NCCL {'.'.join(map(str, nccl))} cannot capture collectives (needs >= 2.9.6)"
    if world > 1 and not can_unhook:
        return "none", "this torch's DDP cannot remove its autograd hooks: no clean fallback after a failed capture"
    return "cuda_graph", None


def registers_generators() -> bool:
    return hasattr(torch.cuda.CUDAGraph, "register_generator_state")


def first_line(exc: BaseException) -> str:
    return (f"{type(exc).__name__}: {exc}".splitlines() or [type(exc).__name__])[0][:300]


@dataclass
class Captured:
    graph: Any  # torch.cuda.CUDAGraph
    idx: torch.Tensor  # static index buffer: the batch's indices are copied in before each replay
    loss: torch.Tensor  # static loss, overwritten by every replay


class GraphSteps:
    """The captured steps of one rank, one graph per (per-rank batch, no_sync); eager warm-up steps
    before each capture; the collective fallback to the eager step. ``job`` is the rank's ``Job``
    (``eager_step``, ``loss``, ``sync_ctx``, ``to_eager``, ``opt``, ``gen``, ``r``, ``side``)."""

    def __init__(self, job):
        self.job = job
        self.graphs: dict[tuple[int, bool], Captured] = {}
        self.warm: dict[tuple[int, bool], int] = {}
        self.active = True
        self.error: str | None = None  # this rank's own capture failure (first line)
        self.info: dict[str, Any] = {
            "graph": "cuda_graph", "graph_reason": None, "warmup_steps": 0, "warmup_s": 0.0, "captures": [],
            "augment_rng": RNG_REGISTERED if job.gen is not None else RNG_DEFAULT, "comm_method": COMM_GRAPH}

    # -- one step --------------------------------------------------------------------------------
    def step(self, idx: torch.Tensor, no_sync: bool) -> torch.Tensor:
        key = (int(idx.numel()), no_sync)
        cap = self.graphs.get(key)
        if cap is None:
            if self.warm.get(key, 0) < self._needed():
                return self._warm_step(idx, key)
            cap = self.capture(key)
            if cap is None:  # every rank fell back
                return self.job.eager_step(idx, no_sync)
        cap.idx.copy_(idx)
        cap.graph.replay()
        return cap.loss.clone()  # the static loss is overwritten by the next replay

    def _needed(self) -> int:
        return SHAPE_WARMUP_STEPS if self.info["captures"] else DDP_WARMUP_STEPS

    def _side(self):
        side = self.job.side
        return torch.cuda.stream(side) if side is not None else contextlib.nullcontext()

    def _warm_step(self, idx: torch.Tensor, key: tuple[int, bool]) -> torch.Tensor:
        """One eager step on the side stream (the recipe's warm-up); gradients from None."""
        job, side = self.job, self.job.side
        a = clock()
        job.opt.zero_grad(set_to_none=True)  # a replayed graph leaves .grad on its own buffers
        if side is not None:
            side.wait_stream(torch.cuda.current_stream(job.r.device))
        with self._side():
            loss = job.eager_step(idx, key[1], cache=False)
        if side is not None:
            side.synchronize()  # the tensors of the default stream's batch outlive their use here
        self.warm[key] = self.warm.get(key, 0) + 1
        if not self.info["captures"]:
            self.info["warmup_steps"] += 1
            self.info["warmup_s"] += clock() - a
        return loss

    # -- capture, agreement, fallback -------------------------------------------------------------
    def _capture(self, key: tuple[int, bool]) -> Captured:
        job = self.job
        n, no_sync = key
        idx = torch.zeros(n, dtype=torch.long, device=job.r.device)
        graph = torch.cuda.CUDAGraph()
        if job.gen is not None:
            graph.register_generator_state(job.gen)
        job.opt.zero_grad(set_to_none=True)
        with torch.cuda.graph(graph, stream=job.side, capture_error_mode="thread_local"):
            with job.sync_ctx(no_sync):
                loss = job.loss(idx, cache=False)
                loss.backward()
            job.opt.step()
        return Captured(graph, idx, loss.detach())

    def capture(self, key: tuple[int, bool]) -> Captured | None:
        """Capture ``key``'s graph on every rank; None (and every rank eager) where any rank failed."""
        job, dev = self.job, self.job.r.device
        where = getattr(job.r, "current", "") or "training"
        a, prev, cap = clock(), torch.cuda.current_stream(dev) if job.r.cuda else None, None
        try:
            cap = self._capture(key)
            job.r.sync()
        except Exception as exc:  # noqa: BLE001 -- any failure of the capture means: no graphs on any rank
            if prev is not None:
                torch.cuda.set_stream(prev)  # torch.cuda.graph leaves its stream current when capture_end raises
            self.error = first_line(exc)
            print(f"rank {job.r.rank}: CUDA graph capture failed during {where}: {self.error}", file=sys.stderr,
                  flush=True)
        if not self._agree(cap is not None):
            if cap is not None:
                cap.graph.reset()
            self.fall_back(where)
            return None
        self.graphs[key] = cap
        self.info["captures"].append({"per_rank_batch": key[0], "no_sync": key[1], "during": where,
                                      "warmup_steps": self.warm.get(key, 0), "capture_s": clock() - a,
                                      "since_process_start_s": time.time() - job.t0})
        return cap

    def _agree(self, ok: bool) -> bool:
        """True where every rank captured (an all-reduce of a flag: all ranks take the same road)."""
        flag = torch.tensor([1.0 if ok else 0.0], device=self.job.r.device)
        return int(round(self.job.r.sum_(flag).item())) == self.job.r.world

    def fall_back(self, where: str) -> None:
        """Every rank: drop all graphs, eager DDP with the timed hook from here on."""
        self.release(keep=())
        self.active = False
        trained = any(c["during"].startswith("training") for c in self.info["captures"])
        mine = f"this rank's capture failed: {self.error}" if self.error else "another rank's capture failed"
        self.info.update(comm_method=COMM_HOOK, graph_reason=(
            f"{mine} during {where}; every rank fell back to the eager step"
            + (" from there (training had replayed the captured step)" if trained else " for the whole run")))
        if not trained:
            self.info["graph"] = "none"
        self.job.to_eager()

    def release(self, keep=()) -> None:
        """Drop the graphs not in ``keep`` (their memory pools go with their last tensors)."""
        for key in [k for k in self.graphs if k not in keep]:
            self.graphs.pop(key).graph.reset()

    # -- the timed windows' graphs ---------------------------------------------------------------
    def prepare(self, per_rank: int, stream, pair: bool) -> None:
        """Warm up and capture the graphs of one batch before its windows: the synchronized step
        and, with several ranks, the ``no_sync`` one, so both windows run the same kind of step."""
        keys = [(per_rank, False)] + ([(per_rank, True)] if pair else [])
        self.release(keep=keys)
        for key in keys:
            while self.active and key not in self.graphs:
                self.job.step(next(stream), no_sync=key[1])

    def training_info(self, total_steps: int) -> dict[str, Any]:
        """The training step's record: which step ran, its warm-up and its capture (on the clock)."""
        info = dict(self.info, captures=list(self.info["captures"]))
        during = [c for c in info["captures"] if c["during"].startswith("training")]
        if info["graph"] == "cuda_graph" and not during:
            info.update(graph="none", graph_reason=(
                f"training had {total_steps} steps, not more than the {DDP_WARMUP_STEPS} eager warm-up steps "
                "before the capture: it ran eagerly (the timed windows replay graphs)"))
        info["capture_s"] = during[0]["capture_s"] if during else None
        info["captured_since_process_start_s"] = during[0]["since_process_start_s"] if during else None
        return info
