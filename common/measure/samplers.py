"""Background samplers: NVML for the GPU, psutil (+ RAPL, temperatures) for the CPU.

Each sampler runs a daemon thread with a monotonic deadline loop, a stop Event and a lock,
and is a context manager that joins its thread on exit. Samples carry ``t`` on the same
``perf_counter`` clock as timing spans. A field whose sensor fails is recorded once in
``errors`` with its message and read as ``None`` from then on; the other fields go on.
The time spent reading sensors is itself measured (``overhead``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common.measure.timing import clock

MIN_HZ, MAX_HZ = 0.1, 100.0


class Sampler:
    """Base class: subclasses define ``fields`` as {name: reader()}; ``slow_fields`` are
    read at most ``slow_hz`` times per second (NVML's PCIe query blocks for ~20 ms)."""

    name = "sampler"
    slow_hz = 2.0

    def __init__(self, hz: float = 10.0):
        if not (MIN_HZ <= hz <= MAX_HZ):
            raise ValueError(f"sampling rate {hz} Hz outside {MIN_HZ}..{MAX_HZ} Hz")
        self.hz = float(hz)
        self.fields: dict[str, Callable[[], Any]] = {}
        self.slow_fields: dict[str, Callable[[], Any]] = {}
        self.errors: dict[str, str] = {}
        self.samples: list[dict[str, Any]] = []
        self.read_seconds: list[float] = []
        self.missed_deadlines = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_slow = -1e9
        self._last_slow_values: dict[str, Any] = {}
        self.started_at: float | None = None
        self.stopped_at: float | None = None

    # -- reading -------------------------------------------------------------------------
    def _read_fields(self, fields: dict[str, Callable[[], Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, reader in fields.items():
            if key in self.errors:
                out[key] = None
                continue
            try:
                out[key] = reader()
            except Exception as exc:  # a failing sensor is recorded once, the rest go on
                self.errors[key] = f"{type(exc).__name__}: {exc}"
                out[key] = None
        return out

    def sample_once(self) -> dict[str, Any]:
        t0 = clock()
        sample = self._read_fields(self.fields)
        if self.slow_fields:
            if t0 - self._last_slow >= 1.0 / self.slow_hz:
                self._last_slow = t0
                self._last_slow_values = self._read_fields(self.slow_fields)
            sample.update(self._last_slow_values)
        t1 = clock()
        sample["t"] = (t0 + t1) / 2
        with self._lock:
            self.samples.append(sample)
            self.read_seconds.append(t1 - t0)
        return sample

    # -- thread ----------------------------------------------------------------------------
    def _loop(self) -> None:
        period = 1.0 / self.hz
        deadline = clock()
        while not self._stop.is_set():
            self.sample_once()
            deadline += period
            now = clock()
            if now > deadline:  # fell behind: skip the missed ticks, never burst
                missed = int((now - deadline) // period) + 1
                self.missed_deadlines += missed
                deadline += missed * period
            self._stop.wait(max(0.0, deadline - clock()))

    def start(self) -> "Sampler":
        if self._thread is not None:
            raise RuntimeError(f"{self.name} sampler already started")
        self._stop.clear()
        self.started_at = clock()
        self._thread = threading.Thread(target=self._loop, name=f"{self.name}-sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.stopped_at = clock()

    def __enter__(self) -> "Sampler":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- results -----------------------------------------------------------------------------
    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.samples)

    def overhead(self) -> dict[str, Any]:
        with self._lock:
            reads = list(self.read_seconds)
        span = (self.stopped_at or clock()) - (self.started_at or clock())
        busy = sum(reads)
        return {
            "samples": len(reads),
            "mean_read_ms": 1e3 * busy / len(reads) if reads else None,
            "max_read_ms": 1e3 * max(reads) if reads else None,
            "busy_fraction": busy / span if span > 0 else None,
            "missed_deadlines": self.missed_deadlines,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "sampler": self.name,
            "hz": self.hz,
            "fields": list(self.fields) + list(self.slow_fields),
            "errors": dict(self.errors),
            "overhead": self.overhead(),
            "samples": self.snapshot(),
        }


# ---------------------------------------------------------------------------------------
# GPU (NVML)
# ---------------------------------------------------------------------------------------

THROTTLE_REASONS = {
    0x1: "gpu_idle",
    0x2: "applications_clocks_setting",
    0x4: "sw_power_cap",
    0x8: "hw_slowdown",
    0x10: "sync_boost",
    0x20: "sw_thermal_slowdown",
    0x40: "hw_thermal_slowdown",
    0x80: "hw_power_brake_slowdown",
    0x100: "display_clock_setting",
}


def decode_throttle(mask: int) -> list[str]:
    return [name for bit, name in THROTTLE_REASONS.items() if mask & bit]


def nvml_available() -> tuple[bool, str | None]:
    """(True, None) when NVML initialises and sees a GPU; else (False, reason)."""
    try:
        import pynvml
    except ImportError as exc:
        return False, f"pynvml (nvidia-ml-py) not importable: {exc}"
    try:
        pynvml.nvmlInit()
        count = pynvml.nvmlDeviceGetCount()
    except Exception as exc:
        return False, f"NVML unavailable: {exc}"
    if count == 0:
        return False, "NVML sees no GPU"
    return True, None


class GPUSampler(Sampler):
    """NVML fields of one GPU. ``nvml`` and ``handle`` may be fakes in tests."""

    name = "gpu"

    def __init__(self, hz: float = 10.0, index: int = 0, nvml: Any = None, handle: Any = None, pcie: bool = True):
        super().__init__(hz)
        if nvml is None:
            import pynvml as nvml

            nvml.nvmlInit()
        self.nvml = nvml
        self.index = index
        self.handle = handle if handle is not None else nvml.nvmlDeviceGetHandleByIndex(index)
        n, h = nvml, self.handle
        mib = 1024 * 1024
        self.fields = {
            "gpu_util_pct": lambda: n.nvmlDeviceGetUtilizationRates(h).gpu,
            "mem_util_pct": lambda: n.nvmlDeviceGetUtilizationRates(h).memory,
            "memory_used_mib": lambda: n.nvmlDeviceGetMemoryInfo(h).used / mib,
            "temperature_c": lambda: n.nvmlDeviceGetTemperature(h, 0),  # NVML_TEMPERATURE_GPU
            "power_w": lambda: n.nvmlDeviceGetPowerUsage(h) / 1000.0,
            "sm_clock_mhz": lambda: n.nvmlDeviceGetClockInfo(h, 1),  # NVML_CLOCK_SM
            "throttle_mask": lambda: int(n.nvmlDeviceGetCurrentClocksEventReasons(h)),
            "energy_mj": lambda: n.nvmlDeviceGetTotalEnergyConsumption(h),
        }
        if pcie:
            self.slow_fields = {
                "pcie_tx_kbs": lambda: n.nvmlDeviceGetPcieThroughput(h, 0),  # NVML_PCIE_UTIL_TX_BYTES
                "pcie_rx_kbs": lambda: n.nvmlDeviceGetPcieThroughput(h, 1),
            }

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        d["index"] = self.index
        return d


# ---------------------------------------------------------------------------------------
# CPU (psutil, RAPL, temperatures)
# ---------------------------------------------------------------------------------------

POWERCAP = Path("/sys/class/powercap")


def rapl_domains(root: Path = POWERCAP) -> tuple[dict[str, Path], str | None]:
    """Readable RAPL energy counters {domain name: energy_uj path}, or ({}, reason)."""
    if not root.exists():
        return {}, f"{root} does not exist (no RAPL interface on this machine)"
    found: dict[str, Path] = {}
    denied = []
    for zone in sorted(root.glob("intel-rapl:*")):
        energy = zone / "energy_uj"
        name_file = zone / "name"
        if not energy.exists():
            continue
        try:
            name = name_file.read_text().strip() if name_file.exists() else zone.name
            int(energy.read_text())
        except PermissionError:
            denied.append(str(energy))
            continue
        except OSError:
            continue
        key = name if name not in found else f"{name}:{zone.name}"
        found[key] = energy
    if found:
        return found, None
    if denied:
        return {}, (f"RAPL counters exist but are not readable ({denied[0]}: permission denied; "
                    "root or a udev rule is needed)")
    return {}, f"no RAPL energy counters under {root}"


def read_temperatures() -> dict[str, float]:
    import psutil

    fn = getattr(psutil, "sensors_temperatures", None)
    if fn is None:
        raise RuntimeError("psutil has no temperature support on this platform")
    temps = fn()
    if not temps:
        raise RuntimeError("no temperature sensors exposed by the OS")
    return {f"{chip}/{entry.label or i}": entry.current for chip, entries in temps.items()
            for i, entry in enumerate(entries)}


class CPUSampler(Sampler):
    """psutil utilization (per core and total), memory, RSS of this process and its children
    (DataLoader workers), frequency, temperatures and RAPL energy counters where they exist."""

    name = "cpu"

    def __init__(self, hz: float = 10.0, rapl_root: Path = POWERCAP):
        super().__init__(hz)
        import psutil

        self.psutil = psutil
        self.proc = psutil.Process()
        psutil.cpu_percent(percpu=True)  # prime the delta counters
        self.rapl, self.rapl_reason = rapl_domains(rapl_root)
        mib = 1024 * 1024

        def per_core():
            return psutil.cpu_percent(percpu=True)

        def rss():
            return self.proc.memory_info().rss / mib

        def children_rss():
            total = 0
            for child in self.proc.children(recursive=True):
                try:
                    total += child.memory_info().rss
                except psutil.Error:
                    pass
            return total / mib

        def freq():
            f = psutil.cpu_freq()
            if f is None:
                raise RuntimeError("CPU frequency not exposed by the OS")
            return f.current

        self.fields = {
            "cpu_per_core_pct": per_core,
            "ram_used_mib": lambda: psutil.virtual_memory().used / mib,
            "process_rss_mib": rss,
            "cpu_freq_mhz": freq,
        }
        # walking /proc for the worker processes costs ~0.6 ms: read it (and temperatures) at slow_hz
        self.slow_fields = {"children_rss_mib": children_rss, "temperatures_c": read_temperatures}
        if self.rapl:
            self.fields["rapl_uj"] = lambda: {k: int(p.read_text()) for k, p in self.rapl.items()}
        else:
            self.errors["rapl_uj"] = self.rapl_reason or "RAPL unavailable"

    def sample_once(self) -> dict[str, Any]:
        sample = super().sample_once()
        cores = sample.get("cpu_per_core_pct")
        sample["cpu_total_pct"] = sum(cores) / len(cores) if cores else None
        return sample


class Monitor:
    """The samplers of one run as one context manager: CPU always, GPU where NVML works.
    ``unavailable`` holds the reason a sampler could not start."""

    def __init__(self, hz: float = 10.0, gpu_index: int | None = 0):
        self.hz = hz
        self.samplers: list[Sampler] = []
        self.unavailable: dict[str, str] = {}
        self.cpu = CPUSampler(hz)
        self.samplers.append(self.cpu)
        self.gpu: GPUSampler | None = None
        if gpu_index is not None:
            ok, reason = nvml_available()
            if ok:
                try:
                    self.gpu = GPUSampler(hz, index=gpu_index)
                    self.samplers.append(self.gpu)
                except Exception as exc:
                    self.unavailable["gpu"] = f"{type(exc).__name__}: {exc}"
            else:
                self.unavailable["gpu"] = reason or "NVML unavailable"
        else:
            self.unavailable["gpu"] = "no GPU in this analysis (device is CPU)"

    def __enter__(self) -> "Monitor":
        for s in self.samplers:
            s.start()
        return self

    def __exit__(self, *exc) -> None:
        for s in self.samplers:
            s.stop()

    def to_dict(self) -> dict[str, Any]:
        return {
            "hz": self.hz,
            "cpu": self.cpu.to_dict(),
            "gpu": self.gpu.to_dict() if self.gpu else None,
            "unavailable": dict(self.unavailable),
        }


def wait_for_samples(sampler: Sampler, n: int, timeout: float = 5.0) -> None:
    """Block until ``sampler`` holds ``n`` samples (tests and short windows)."""
    end = time.monotonic() + timeout
    while len(sampler.snapshot()) < n and time.monotonic() < end:
        time.sleep(0.005)
