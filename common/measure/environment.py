"""The environment every record carries: hardware, software, data, configuration, seed,
git commit and time. Fields that cannot be read are ``None`` with the reason beside them."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def git_commit() -> dict[str, Any]:
    """The commit that runs: the one named by the SUITE_COMMIT environment variable where set
    (a copy on a lent GPU machine, whose .git, if any, is not the code that was copied), else
    the checkout's."""
    given = os.environ.get("SUITE_COMMIT")
    if given:
        return {"commit": given, "dirty": None, "source": "SUITE_COMMIT"}
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, timeout=5)
        if sha.returncode == 0:
            return {"commit": sha.stdout.strip(), "dirty": bool(dirty.stdout.strip())}
        return {"commit": None, "reason": sha.stderr.strip() or "not a git checkout"}
    except (OSError, subprocess.SubprocessError) as exc:
        return {"commit": None, "reason": str(exc)}


def gpu_info() -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {"cuda_available": torch.cuda.is_available(), "torch_cuda": torch.version.cuda}
    if not torch.cuda.is_available():
        info.update(count=0, devices=[], reason="torch.cuda.is_available() is False")
        return info
    devices = []
    for i in range(torch.cuda.device_count()):
        p = torch.cuda.get_device_properties(i)
        devices.append({"index": i, "name": p.name, "memory_mib": p.total_memory / 2**20,
                        "multiprocessors": p.multi_processor_count, "capability": f"{p.major}.{p.minor}"})
    info.update(count=len(devices), devices=devices, cudnn=torch.backends.cudnn.version())
    try:
        import pynvml

        pynvml.nvmlInit()
        info["driver"] = pynvml.nvmlSystemGetDriverVersion()
        from common.measure.samplers import nvml_index

        h = pynvml.nvmlDeviceGetHandleByIndex(nvml_index(0))
        info["nvml_index"] = nvml_index(0)
        info["cuda_visible_devices"] = os.environ.get("CUDA_VISIBLE_DEVICES")
        info["power_limit_w"] = pynvml.nvmlDeviceGetPowerManagementLimit(h) / 1000.0
    except Exception as exc:
        info["driver"] = None
        info["driver_reason"] = f"NVML: {exc}"
    return info


def collect(config: dict | None = None, dataset: dict | None = None, seed: int | None = None,
            threads_used: int | None = None) -> dict[str, Any]:
    import numpy
    import psutil
    import torch

    try:
        import monai

        monai_version = monai.__version__
    except ImportError:
        monai_version = None
    mem = psutil.virtual_memory()
    return {
        "time_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "hostname": platform.node(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "torch": torch.__version__,
        "monai": monai_version,
        "numpy": numpy.__version__,
        "cpu_model": _cpu_model(),
        "physical_cores": psutil.cpu_count(logical=False),
        "logical_cores": psutil.cpu_count(logical=True),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "threads_used": threads_used if threads_used is not None else torch.get_num_threads(),
        "ram_gib": mem.total / 2**30,
        "gpu": gpu_info(),
        "git": git_commit(),
        "dataset": dataset,
        "config": config,
        "seed": seed,
    }
