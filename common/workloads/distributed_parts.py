"""The parts of a data-parallel rank (``common.workloads.distributed``): its place in the run and
its collectives (``Rank``), the timed all-reduce communication hook (``CommTimer``), the shards of
the device-resident training set (``Shards``) and the sampler and energy meter of its own device
(``DeviceProbe``)."""

from __future__ import annotations

import datetime
import os
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import torch
import torch.distributed as dist

from common.atomic import write_text
from common.measure.timing import clock, cuda_sync

FAIL_ENV = "SUITE_SCALING_FAIL"
NO_MULTICAST_ENV = {"NCCL_NVLS_ENABLE": "0", "TORCH_SYMM_MEM_DISABLE_MULTICAST": "1", "NVSHMEM_DISABLE_NVLS": "1"}


class Rank:
    """This process's place in the run and the collectives it uses (no-ops for one process)."""

    def __init__(self, spec: dict[str, Any]):
        self.rank = int(os.environ.get("RANK", 0))
        self.world = int(os.environ.get("WORLD_SIZE", 1))
        self.local_rank = int(os.environ.get("LOCAL_RANK", 0))
        self.cuda = spec["device"] == "cuda"
        if self.cuda:
            torch.cuda.set_device(self.local_rank)
            self.device = torch.device("cuda", self.local_rank)
        else:
            torch.set_num_threads(int(spec["threads"]))
            self.device = torch.device("cpu")
        self.out = Path(spec["out"])
        self.fail_step = _fail_step(self.rank)
        self.current = "start-up"  # what this rank is doing (``phase``)

    @property
    def distributed(self) -> bool:
        return dist.is_available() and dist.is_initialized()

    def init(self, timeout_s: float) -> None:
        if self.world > 1:
            dist.init_process_group("nccl" if self.cuda else "gloo", timeout=datetime.timedelta(seconds=timeout_s),
                                    device_id=self.device if self.cuda else None)

    def sync(self) -> None:
        cuda_sync(self.device)

    def barrier(self) -> None:
        self.sync()
        if self.distributed:
            dist.barrier(device_ids=[self.local_rank]) if self.cuda else dist.barrier()
            self.sync()

    def sum_(self, t: torch.Tensor) -> torch.Tensor:
        if self.distributed:
            dist.all_reduce(t)
        return t

    def phase(self, text: str) -> None:
        """Where this rank is (read by the launcher when a rank dies)."""
        self.current = text
        write_text(self.out.parent / "phase" / f"rank{self.rank}.txt", text)
        if self.rank == 0:
            print(f"[rank 0/{self.world}] {text}", flush=True)

    def after_step(self, step: int) -> None:
        if self.fail_step is not None and step == self.fail_step:
            print(f"rank {self.rank}: {FAIL_ENV} ends this rank after step {step}", file=sys.stderr, flush=True)
            os._exit(1)


def _fail_step(rank: int) -> int | None:
    raw = os.environ.get(FAIL_ENV, "")
    if not raw:
        return None
    r, _, k = raw.partition(":")
    return int(k) if int(r) == rank else None


def _process_start() -> float:
    """Wall-clock time (s since the epoch) this process was created: its start in clock ticks since
    boot (/proc/self/stat) against CLOCK_BOOTTIME, to 10 ms (psutil's create_time adds the boot
    time's whole-second rounding)."""
    try:
        with open("/proc/self/stat", encoding="ascii") as fh:
            start_ticks = int(fh.read().rsplit(")", 1)[1].split()[19])
        age = time.clock_gettime(time.CLOCK_BOOTTIME) - start_ticks / os.sysconf("SC_CLK_TCK")
        return time.time() - age
    except (OSError, ValueError, IndexError, AttributeError):
        return psutil.Process().create_time()


# ---------------------------------------------------------------------------------------------
# Timed all-reduce (DDP communication hook)
# ---------------------------------------------------------------------------------------------

class CommTimer:
    """State of ``timed_allreduce``: between ``begin_step`` and ``end_step`` every bucket's
    all-reduce is timed from the moment its gradients are ready to the moment its reduced values
    are (CUDA events on a GPU: the end event is recorded on a stream that waits for the
    all-reduce; wall clock on a CPU, where gloo completes the future)."""

    def __init__(self, device: torch.device, world: int):
        self.cuda = device.type == "cuda"
        self.world = world
        self.steps: list[dict[str, Any]] = []
        self.current: dict[str, Any] | None = None

    def mark(self):
        if self.cuda:
            ev = torch.cuda.Event(enable_timing=True)
            ev.record()
            return ev
        return clock()

    def begin_step(self) -> None:
        self.current = {"start": self.mark(), "allreduce": [], "bytes": 0}

    def end_step(self) -> None:
        self.current["end"] = self.mark()
        self.steps.append(self.current)
        self.current = None

    def _since(self, a, b) -> float:
        return a.elapsed_time(b) / 1000.0 if self.cuda else b - a

    def summary(self) -> dict[str, Any]:
        """Per step: its time, the time with at least one all-reduce in flight, bytes reduced."""
        step_s, busy_s, nbytes, buckets = [], [], [], []
        for s in self.steps:
            dur = self._since(s["start"], s["end"])
            spans = sorted((max(0.0, self._since(s["start"], a)), min(dur, self._since(s["start"], b)))
                           for a, b in s["allreduce"])
            busy, edge = 0.0, 0.0
            for a, b in spans:  # union of the intervals
                a = max(a, edge)
                if b > a:
                    busy += b - a
                    edge = b
            step_s.append(dur)
            busy_s.append(busy)
            nbytes.append(s["bytes"])
            buckets.append(len(s["allreduce"]))
        self.steps = []
        return {"step_s": step_s, "allreduce_s": busy_s, "bytes_per_step": nbytes, "buckets_per_step": buckets,
                "share": sum(busy_s) / sum(step_s) if step_s and sum(step_s) > 0 else None}


def timed_allreduce(state: CommTimer, bucket):  # no return annotation: DDP checks it against a type
    """DDP's default all-reduce (average over ranks), timed while a step is being recorded."""
    buf = bucket.buffer()
    cur = state.current
    start = None
    if cur is not None:
        start = state.mark()
        cur["bytes"] += buf.numel() * buf.element_size()
    buf.div_(state.world)
    fut = dist.all_reduce(buf, async_op=True).get_future()

    def done(f):
        if cur is not None:
            cur["allreduce"].append((start, state.mark()))
        return f.value()[0]

    return fut.then(done)


# ---------------------------------------------------------------------------------------------
# Data shards
# ---------------------------------------------------------------------------------------------

class Shards:
    """Index batches of this rank: each epoch one permutation of all images from the run's seed
    (identical on every rank); global batch i is split into ``world`` consecutive shards."""

    def __init__(self, n: int, per_rank: int, r: Rank, seed: int):
        self.n, self.per_rank, self.r, self.seed = n, per_rank, r, seed
        self.global_batch = per_rank * r.world
        self.steps_per_epoch = n // self.global_batch

    def epoch(self, e: int) -> list[torch.Tensor]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + e)
        perm = torch.randperm(self.n, generator=g).to(self.r.device)
        lo = self.r.rank * self.per_rank
        return [perm[i * self.global_batch + lo:i * self.global_batch + lo + self.per_rank]
                for i in range(self.steps_per_epoch)]

    def stream(self, first_epoch: int):
        e = first_epoch
        while True:
            yield from self.epoch(e)
            e += 1


# ---------------------------------------------------------------------------------------------
# This rank's device: NVML handle, sampler, energy meter
# ---------------------------------------------------------------------------------------------

def _nvml_handle(r: Rank) -> tuple[Any, int | None, str | None]:
    """(handle, NVML index, reason) of this rank's own GPU, found by its UUID (NVML indices
    ignore CUDA_VISIBLE_DEVICES); falls back to the visible-device mapping."""
    from common.measure.samplers import nvml_available

    ok, reason = nvml_available()
    if not ok:
        return None, None, reason
    import pynvml

    try:
        uuid = str(torch.cuda.get_device_properties(r.local_rank).uuid)
        handle = pynvml.nvmlDeviceGetHandleByUUID(uuid if uuid.startswith("GPU-") else f"GPU-{uuid}")
    except Exception:
        from common.measure.samplers import nvml_index

        handle = pynvml.nvmlDeviceGetHandleByIndex(nvml_index(r.local_rank))
    return handle, int(pynvml.nvmlDeviceGetIndex(handle)), None


class DeviceProbe:
    """Samples and meters this rank's own device only: its GPU through NVML, or (rank 0 only)
    the CPU the ranks share through psutil and RAPL."""

    def __init__(self, r: Rank, hz: float):
        from common.measure.energy import EnergyMeter
        from common.measure.samplers import CPUSampler, GPUSampler

        self.sampler, self.meter, self.nvml_index, self.reason = None, None, None, None
        if r.cuda:
            handle, self.nvml_index, self.reason = _nvml_handle(r)
            if handle is not None:
                import pynvml

                self.sampler = GPUSampler(hz, index=self.nvml_index, nvml=pynvml, handle=handle, pcie=False)
                self.meter = EnergyMeter(gpu_index=self.nvml_index, nvml=pynvml, handle=handle, device=str(r.device))
        elif r.rank == 0:
            self.sampler = CPUSampler(hz)
            self.meter = EnergyMeter(gpu_index=None, device="cpu")
        else:
            self.reason = "the CPU is shared by the ranks: rank 0 samples it"
        self.key = "gpu" if r.cuda else "cpu"
        if self.sampler is not None:
            self.sampler.start()

    def read(self):
        return self.meter.read() if self.meter is not None else None

    def energy(self, readings: list[tuple[Any, Any]]) -> tuple[list[float] | None, str | None]:
        """Joules of each (start, end) reading pair on this device's counter, or (None, reason)."""
        if self.meter is None:
            return None, self.reason
        out = []
        for a, b in readings:
            d = self.meter.delta(a, b)
            if d.get(f"{self.key}_energy_j") is None:
                return None, d.get(f"{self.key}_energy_reason")
            out.append(d[f"{self.key}_energy_j"])
        return out, None

    def usage(self, spans: list[tuple[float, float]]) -> dict[str, Any]:
        """Mean utilization and power of this device's samples inside ``spans`` (clock times)."""
        if self.sampler is None:
            return {"reason": self.reason}
        inside = [s for s in self.sampler.snapshot() if any(a <= s["t"] <= b for a, b in spans)]
        fields = ("gpu_util_pct", "power_w", "memory_used_mib") if self.key == "gpu" else ("cpu_total_pct",)
        out: dict[str, Any] = {"samples": len(inside)}
        for f in fields:
            vals = [s[f] for s in inside if s.get(f) is not None]
            out[f"{f}_mean"] = sum(vals) / len(vals) if vals else None
        if not inside:
            out["reason"] = f"no sample inside the windows at {self.sampler.hz:g} Hz"
        return out

    def stop(self) -> None:
        if self.sampler is not None:
            self.sampler.stop()
