"""Background samplers: NVML for the GPU, psutil (+ RAPL, temperatures) for the CPU, and the
Monitor that runs them over a run. The thread, the families and the overhead accounting are in
``common.measure.sampler_base``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from common.measure import cpu_readers
from common.measure.sampler_base import MAX_HZ, MIN_HZ, SLOW_EVERY, TICK_BUDGET_MS, Family, Missing, Sampler

__all__ = ["MIN_HZ", "MAX_HZ", "SLOW_EVERY", "Family", "Missing", "Sampler", "GPUSampler", "CPUSampler",
           "Monitor", "decode_throttle", "nvml_available", "rapl_domains", "read_temperatures", "wait_for_samples"]


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


def nvml_index(cuda_index: int = 0, visible: str | None = None) -> int:
    """NVML's index of CUDA device ``cuda_index``. NVML numbers every GPU of the machine and
    ignores CUDA_VISIBLE_DEVICES; with CUDA_VISIBLE_DEVICES=1 CUDA's device 0 is NVML's 1, and a
    meter opened at 0 would read another job's board. Numeric lists only (a UUID list keeps the
    index as given)."""
    if visible is None:
        import os

        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if not visible:
        return cuda_index
    ids = [v.strip() for v in visible.split(",") if v.strip()]
    if cuda_index < len(ids) and all(v.isdigit() for v in ids):
        return int(ids[cuda_index])
    return cuda_index


# NVML field ids read in one nvmlDeviceGetFieldValues call: id -> (field, scale to its unit)
NVML_FIELD_IDS = {
    83: ("energy_mj", 1.0),  # NVML_FI_DEV_TOTAL_ENERGY_CONSUMPTION (mJ since driver load)
    185: ("power_w", 1e-3),  # NVML_FI_DEV_POWER_AVERAGE (mW; what nvmlDeviceGetPowerUsage returns on Ampere+)
    186: ("power_instant_w", 1e-3),  # NVML_FI_DEV_POWER_INSTANT (mW)
    197: ("pcie_tx_bytes", 1.0),  # NVML_FI_DEV_PCIE_COUNT_TX_BYTES (cumulative)
    198: ("pcie_rx_bytes", 1.0),  # NVML_FI_DEV_PCIE_COUNT_RX_BYTES (cumulative)
}
_VALUE_MEMBERS = {0: "dVal", 1: "uiVal", 2: "ulVal", 3: "ullVal", 4: "sllVal", 5: "siVal", 6: "usVal"}


def field_value(fv: Any) -> float:
    """The number inside one nvmlFieldValue_t (its union member picked by valueType)."""
    return float(getattr(fv.value, _VALUE_MEMBERS[int(fv.valueType)]))


class GPUSampler(Sampler):
    """NVML fields of one GPU in eight calls per tick: energy, average power and instant power
    (one nvmlDeviceGetFieldValues each: batched, the three took ~4 ms a read on an H200, and
    apart the tick budget slows only the costly one), then utilization, memory, temperature,
    SM clock and throttle reasons; the PCIe byte counters (where the driver has them) batched
    in one call on the slow ticks only. A batched field the driver
    refuses falls back to its own call (energy, power) or is recorded as missing with the
    reason. NVML's PCIe throughput query (it blocks ~20 ms) is not used. ``nvml`` and
    ``handle`` may be fakes in tests."""

    name = "gpu"

    def __init__(self, hz: float = 10.0, index: int = 0, nvml: Any = None, handle: Any = None,
                 slow_every: int = SLOW_EVERY, pcie: bool = True, tick_budget_ms: float | None = TICK_BUDGET_MS):
        super().__init__(hz, slow_every, tick_budget_ms)
        if nvml is None:
            import pynvml as nvml

            nvml.nvmlInit()
        self.nvml = nvml
        self.index = index
        self.handle = handle if handle is not None else nvml.nvmlDeviceGetHandleByIndex(index)
        n, h = nvml, self.handle
        mib = 1024 * 1024
        self._single = {  # the fallback of a batched field: its own NVML call
            "energy_mj": lambda: float(n.nvmlDeviceGetTotalEnergyConsumption(h)),
            "power_w": lambda: n.nvmlDeviceGetPowerUsage(h) / 1000.0,
        }
        # pcie=False: without the PCIe byte counters (the blocking throughput query is never used)
        self._batched = {i: v for i, v in NVML_FIELD_IDS.items() if pcie or not v[0].startswith("pcie_")}
        self._fallback: set[str] = set()
        # energy, average power and instant power each in its own field-values call: one of the three
        # took ~4 ms a read on an H200 (run W, batched), and as families of their own the tick budget
        # reads only that one less often
        for i, (f, _) in self._batched.items():
            if not f.startswith("pcie_"):
                self.add_family(f, lambda ids=[i]: self._read_counters(ids), [f])
        pcie_ids = [i for i, (f, _) in self._batched.items() if f.startswith("pcie_")]
        if pcie_ids:
            self.add_family("pcie", lambda: self._read_counters(pcie_ids), [self._batched[i][0] for i in pcie_ids],
                            slow=True)

        def util():
            u = n.nvmlDeviceGetUtilizationRates(h)
            return {"gpu_util_pct": u.gpu, "mem_util_pct": u.memory}

        self.add_family("utilization", util, ("gpu_util_pct", "mem_util_pct"))
        self.add_field("memory_used_mib", lambda: n.nvmlDeviceGetMemoryInfo(h).used / mib)
        self.add_field("temperature_c", lambda: n.nvmlDeviceGetTemperature(h, 0))  # NVML_TEMPERATURE_GPU
        self.add_field("sm_clock_mhz", lambda: n.nvmlDeviceGetClockInfo(h, 1))  # NVML_CLOCK_SM
        self.add_field("throttle_mask", lambda: int(throttle_reasons(n, h)))

    def _read_counters(self, family: list[int]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        ids = [i for i in family if (f := self._batched[i][0]) not in self._fallback and f not in self.errors]
        if ids:
            try:
                values = self.nvml.nvmlDeviceGetFieldValues(self.handle, ids)
            except Exception as exc:  # no batched reads on this driver: every field on its own call
                reason = f"nvmlDeviceGetFieldValues: {type(exc).__name__}: {exc}"
                values = []
                for i in ids:
                    self._drop_batched(self._batched[i][0], reason, out)
            for fv in values:
                name, scale = self._batched[int(fv.fieldId)]
                if int(fv.nvmlReturn) == 0:
                    out[name] = field_value(fv) * scale
                else:
                    self._drop_batched(name, f"NVML field {int(fv.fieldId)}: return code {int(fv.nvmlReturn)}", out)
        for name in self._fallback & {self._batched[i][0] for i in family}:
            if name not in self.errors:
                try:
                    out[name] = self._single[name]()
                except Exception as exc:
                    out[name] = Missing(f"{type(exc).__name__}: {exc}")
        return out

    def _drop_batched(self, name: str, reason: str, out: dict[str, Any]) -> None:
        if name in self._single:
            self._fallback.add(name)
        else:
            out[name] = Missing(reason)

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        d["index"] = self.index
        d["single_call_fields"] = sorted(self._fallback)
        return d


def throttle_reasons(nvml: Any, handle: Any) -> int:
    """The clocks-event (throttle) reason mask; older bindings call it ClocksThrottleReasons."""
    fn = getattr(nvml, "nvmlDeviceGetCurrentClocksEventReasons", None) or nvml.nvmlDeviceGetCurrentClocksThrottleReasons
    return int(fn(handle))


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


def _psutil_freq() -> float:
    import psutil

    f = psutil.cpu_freq()
    if f is None:
        raise RuntimeError("CPU frequency not exposed by the OS")
    return f.current


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
    """psutil utilization per core (one /proc/stat read), system memory, this process's RSS
    and RAPL energy counters on every tick; the frequency of the cores this process may run on,
    the RSS of child processes (DataLoader workers) and temperatures (hwmon) on every
    ``slow_every``-th tick, through ``cpu_readers`` (psutil where those files are absent).
    ``hwmon_root`` and ``sys_cpu`` may point at fake trees in tests."""

    name = "cpu"

    def __init__(self, hz: float = 10.0, rapl_root: Path = POWERCAP, slow_every: int = SLOW_EVERY,
                 hwmon_root: Path = cpu_readers.HWMON, sys_cpu: Path = cpu_readers.SYS_CPU,
                 tick_budget_ms: float | None = TICK_BUDGET_MS):
        super().__init__(hz, slow_every, tick_budget_ms)
        import psutil

        self.psutil = psutil
        self.proc = psutil.Process()
        psutil.cpu_percent(percpu=True)  # prime the delta counters
        self.rapl, self.rapl_reason = rapl_domains(rapl_root)
        mib = 1024 * 1024
        self.add_field("cpu_per_core_pct", lambda: psutil.cpu_percent(percpu=True))
        self.add_field("ram_used_mib", lambda: psutil.virtual_memory().used / mib)
        self.add_field("process_rss_mib", lambda: self.proc.memory_info().rss / mib)
        if self.rapl:
            self.add_field("rapl_uj", lambda: {k: int(p.read_text()) for k, p in self.rapl.items()})
        else:
            self.errors["rapl_uj"] = self.rapl_reason or "RAPL unavailable"
        freq = cpu_readers.freq_files(sys_cpu)
        self.add_field("cpu_freq_mhz", (lambda: cpu_readers.mean_freq_mhz(freq)) if freq else _psutil_freq, slow=True)
        self.add_field("children_rss_mib", lambda: self._children_rss() / mib, slow=True)
        inputs = cpu_readers.hwmon_inputs(hwmon_root) if hwmon_root.exists() else None
        self.add_field("temperatures_c", (lambda: cpu_readers.read_hwmon(inputs)) if inputs else read_temperatures,
                       slow=True)

    def _children_rss(self) -> int:
        pids = cpu_readers.child_pids(self.proc.pid)
        if pids is not None:
            return sum(cpu_readers.rss_bytes(p) for p in pids)
        total = 0
        for child in self.proc.children(recursive=True):
            try:
                total += child.memory_info().rss
            except self.psutil.Error:
                pass
        return total

    def derive(self, sample: dict[str, Any]) -> None:
        cores = sample.get("cpu_per_core_pct")
        sample["cpu_total_pct"] = sum(cores) / len(cores) if cores else None


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
