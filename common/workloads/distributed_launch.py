"""Launch ``common.workloads.distributed`` through torchrun (``python -m torch.distributed.run``)
as a subprocess with a timeout, and collect the result rank 0 wrote into a temporary folder.

The environment built for the workers keeps NVLink multicast off (``NCCL_NVLS_ENABLE=0``,
``TORCH_SYMM_MEM_DISABLE_MULTICAST=1``, ``NVSHMEM_DISABLE_NVLS=1``) and sets the threads per
process. A rank that dies ends the launch with ``RankFailure``: one line naming the rank, its exit
code or signal, what it was doing and its error, and the log; nothing of the run is returned.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.atomic import write_json
from common.workloads.distributed_parts import NO_MULTICAST_ENV

TEARDOWN_GRACE_S = 60.0  # how long the ranks may take to end after all said "done" and the record was written

REPO = Path(__file__).resolve().parents[2]
WORKER = "common.workloads.distributed"
AGENT_SIGTERM = -signal.SIGTERM  # the exit code torchrun's agent gives the ranks it stops after a failure
# what a rank reports when a peer, not itself, failed (gloo's closed connections, NCCL's aborts and timeouts)
PEER_SYMPTOM = re.compile(r"closed by peer|connection reset|broken pipe|communicator was aborted|watchdog|timed ?out|"
                          r"DistNetworkError|DistBackendError|remote worker", re.I)
FAILURE_BLOCK = re.compile(r"rank\s*:\s*(\d+)\s*\(local_rank:\s*(\d+)\)\s*\n\s*exitcode\s*:\s*(-?\d+)")


class RankFailure(RuntimeError):
    """A launch that did not finish: its one-line message names the failed rank."""


@dataclass(frozen=True)
class Rendezvous:
    """torchrun's rendezvous: one machine (standalone, a free local port) or several."""

    nnodes: int = 1
    node_rank: int = 0
    master_addr: str | None = None
    master_port: int = 29500

    def flags(self) -> list[str]:
        if self.nnodes == 1:
            return ["--standalone"]
        return [f"--nnodes={self.nnodes}", f"--node-rank={self.node_rank}", f"--master-addr={self.master_addr}",
                f"--master-port={self.master_port}"]


def worker_env(base: Mapping[str, str], threads: int) -> dict[str, str]:
    """The environment of every worker: ``base`` plus NVLink multicast off, ``threads`` per process
    (torchrun would otherwise set OMP_NUM_THREADS=1) and this repository on the import path."""
    env = dict(base)
    env.update(NO_MULTICAST_ENV)
    env["OMP_NUM_THREADS"] = str(threads)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + [p for p in [env.get("PYTHONPATH")] if p])
    env["PYTHONUNBUFFERED"] = "1"
    return env


def torchrun_command(nproc: int, spec_path: Path, rdzv: Rendezvous) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={nproc}", *rdzv.flags(),
            "--max-restarts=0", "--monitor-interval=0.1", "-m", WORKER, str(spec_path)]


def launch(spec: dict[str, Any], nproc: int, log_path: Path, timeout_s: float,
           rdzv: Rendezvous = Rendezvous()) -> dict[str, Any] | None:
    """Run ``nproc`` ranks per machine; return rank 0's result (None on a machine of node rank > 0)."""
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    world = nproc * rdzv.nnodes
    with tempfile.TemporaryDirectory(prefix="scaling_") as tmp:
        tmp = Path(tmp)
        spec = dict(spec, out=str(tmp / "result.json"), launched_at=time.time())
        write_json(tmp / "spec.json", spec)
        cmd = torchrun_command(nproc, tmp / "spec.json", rdzv)
        with open(log_path, "w", encoding="utf-8") as log:
            log.write(" ".join(cmd) + "\n")
            log.flush()
            proc = subprocess.Popen(cmd, cwd=REPO, env=worker_env(os.environ, spec["threads"]), stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)
            rc, teardown = _wait(proc, tmp, nproc, timeout_s)
            if rc is None:
                _stop(proc)
                where = ", ".join(f"rank {r}: {p}" for r, p in sorted(_read_dir(tmp / "phase").items()))
                raise RankFailure(f"{world}-rank run still running after {timeout_s:.0f} s (SCALING_TIMEOUT_S): "
                                  f"stopped ({where or 'no rank started'}); log: {log_path}; "
                                  "no record written")
        if teardown is not None:
            with open(log_path, "a", encoding="utf-8") as log:
                log.write(f"[launcher] {teardown}\n")
        if rc != 0 and teardown is None:
            raise RankFailure(failure_message(log_path.read_text(encoding="utf-8", errors="replace"), tmp, world,
                                              rc, log_path))
        if rdzv.node_rank != 0:
            return None
        out = tmp / "result.json"
        if not out.exists():
            raise RankFailure(f"{world}-rank run ended without rank 0's result ({out.name}); log: {log_path}")
        result = json.loads(out.read_text(encoding="utf-8"))
        if teardown is not None:
            result["teardown"] = teardown
        return result


def _wait(proc: subprocess.Popen, tmp: Path, nproc: int, timeout_s: float,
          grace_s: float | None = None) -> tuple[int | None, str | None]:
    """torchrun's exit code (None: still running after ``timeout_s``) and, where every local rank
    had said "done" after rank 0 wrote its result but the processes did not end within
    ``grace_s`` (TEARDOWN_GRACE_S), why they were stopped: the record is whole by then, only the
    process group's teardown hung."""
    grace_s = TEARDOWN_GRACE_S if grace_s is None else grace_s
    end, done_at = time.monotonic() + timeout_s, None
    while True:
        try:
            return proc.wait(timeout=min(0.5, max(0.0, end - time.monotonic()))), None
        except subprocess.TimeoutExpired:
            pass
        now = time.monotonic()
        phases = _read_dir(tmp / "phase")
        if done_at is None and (tmp / "result.json").exists() and len(phases) >= nproc \
                and all(p == "done" for p in phases.values()):
            done_at = now
        if done_at is not None and now - done_at > grace_s:
            _stop(proc)
            return proc.returncode, (f"every rank had finished and the record was written, but the processes were "
                                     f"still ending {grace_s:.0f} s later (the process group's teardown): stopped")
        if now >= end:
            return None, None


def _stop(proc: subprocess.Popen) -> None:
    """End torchrun and its workers (their own process group), politely first."""
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _read_dir(folder: Path) -> dict[int, str]:
    """{rank: first line} of the ranks' files rank<R>.txt in ``folder``."""
    out = {}
    for f in folder.glob("rank*.txt") if folder.is_dir() else []:
        m = re.fullmatch(r"rank(\d+)\.txt", f.name)
        if m:
            lines = f.read_text(encoding="utf-8", errors="replace").splitlines()
            out[int(m.group(1))] = lines[0] if lines else ""
    return out


def parse_failures(log: str) -> list[dict[str, Any]]:
    """torchrun's failure report: [{rank, local_rank, exitcode, root_cause}] in report order."""
    root_at = log.find("Root Cause")
    return [{"rank": int(m.group(1)), "local_rank": int(m.group(2)), "exitcode": int(m.group(3)),
             "root_cause": root_at >= 0 and m.start() > root_at} for m in FAILURE_BLOCK.finditer(log)]


def _how(code: int) -> str:
    if code >= 0:
        return f"exit code {code}"
    try:
        return f"signal {-code} ({signal.Signals(-code).name})"
    except ValueError:
        return f"signal {-code}"


def failure_message(log: str, tmp: Path, world: int, rc: int, log_path: Path) -> str:
    """One line: the rank that failed (not the ranks that only saw it go), how, where and why."""
    failures = parse_failures(log)
    errors, phases = _read_dir(tmp / "errors"), _read_dir(tmp / "phase")
    own = [f for f in failures if f["exitcode"] != AGENT_SIGTERM and not PEER_SYMPTOM.search(errors.get(f["rank"], ""))]
    pick = sorted(own or [f for f in failures if f["root_cause"]] or failures, key=lambda f: not f["root_cause"])
    if not pick:
        what = f"torchrun exited with code {rc} without naming a failed rank"
    else:
        f = pick[0]
        why = errors.get(f["rank"]) or "it wrote no error (the process ended abruptly)"
        what = (f"rank {f['rank']} (local rank {f['local_rank']}) failed with {_how(f['exitcode'])} during "
                f"{phases.get(f['rank'], 'start-up')}: {why}")
    return f"{world}-rank data-parallel run stopped: {what}; log: {log_path}; no record written"
