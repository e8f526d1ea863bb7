"""Cheap readers for the CPU sampler's slow families. psutil's own calls cost milliseconds on
a large host (``cpu_freq`` reads one sysfs file per host core, ``sensors_temperatures`` walks
every hwmon chip each time, ``Process.children`` reads /proc/*/stat of every process); these
find their files once and then read only those: the frequency of the cores this process may
run on, the temperature inputs found at start, and the child processes through
/proc/<pid>/task/<tid>/children. Where a file layout is absent they return None and the
caller falls back to psutil."""

from __future__ import annotations

import os
from pathlib import Path

SYS_CPU = Path("/sys/devices/system/cpu")
HWMON = Path("/sys/class/hwmon")
PROC = Path("/proc")
PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def freq_files(root: Path = SYS_CPU) -> list[Path] | None:
    """scaling_cur_freq of each core in this process's affinity set, or None."""
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else range(os.cpu_count() or 1)
    files = [root / f"cpu{i}" / "cpufreq" / "scaling_cur_freq" for i in cores]
    files = [f for f in files if f.exists()]
    return files or None


def mean_freq_mhz(files: list[Path]) -> float:
    khz = [int(f.read_text()) for f in files]
    return sum(khz) / len(khz) / 1000.0


def hwmon_inputs(root: Path = HWMON) -> dict[str, Path] | None:
    """{"chip/label": temp*_input path} of every temperature input under ``root``, or None."""
    found: dict[str, Path] = {}
    for chip in sorted(root.glob("hwmon*")):
        try:
            name = (chip / "name").read_text().strip()
        except OSError:
            name = chip.name
        for inp in sorted(chip.glob("temp*_input")):
            label_file = inp.with_name(inp.name.replace("_input", "_label"))
            try:
                label = label_file.read_text().strip() if label_file.exists() else inp.name.split("_")[0]
            except OSError:
                label = inp.name.split("_")[0]
            key = f"{name}/{label}"
            found[key if key not in found else f"{key}:{chip.name}"] = inp
    return found or None


def read_hwmon(inputs: dict[str, Path]) -> dict[str, float]:
    """Degrees Celsius of each input (hwmon reports millidegrees); unreadable inputs are left out."""
    out = {}
    for key, path in inputs.items():
        try:
            out[key] = int(path.read_text()) / 1000.0
        except (OSError, ValueError):
            continue
    if not out:
        raise RuntimeError("no temperature input readable")
    return out


def child_pids(pid: int, root: Path = PROC) -> list[int] | None:
    """Every descendant of ``pid`` through /proc/<pid>/task/<tid>/children, or None where the
    kernel does not expose that file."""
    if not (root / str(pid) / "task").exists():
        return None
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            tasks = list((root / str(p) / "task").iterdir())
        except OSError:
            continue
        for task in tasks:
            f = task / "children"
            if not f.exists():
                if p == pid:
                    return None
                continue
            try:
                kids = [int(x) for x in f.read_text().split()]
            except (OSError, ValueError):
                continue
            out.extend(kids)
            todo.extend(kids)
    return out


def rss_bytes(pid: int, root: Path = PROC) -> int:
    """Resident set size from /proc/<pid>/statm (second field, in pages); 0 for a process gone."""
    try:
        return int((root / str(pid) / "statm").read_text().split()[1]) * PAGE
    except (OSError, ValueError, IndexError):
        return 0
