"""Energy over a window from hardware counters: NVML's total-energy counter (mJ) for the
GPU, RAPL ``energy_uj`` counters for the CPU package/DRAM. A counter that does not exist or
cannot be read gives ``None`` plus the reason; nothing is estimated from power or TDP.
``sustained_energy`` measures J/image over a long steady window after a warm-up, with idle
power and the board's temperature, SM clock and throttle reasons beside it."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.measure.samplers import POWERCAP, nvml_available, rapl_domains
from common.measure.timing import clock, cuda_sync


@dataclass
class EnergyReading:
    t: float
    gpu_mj: float | None
    rapl_uj: dict[str, int] = field(default_factory=dict)


NO_GPU = "no GPU in this measurement"  # the GPU side's reason when a meter measures the CPU alone


class EnergyMeter:
    def __init__(self, gpu_index: int | None = None, nvml: Any = None, handle: Any = None,
                 rapl_root: Path = POWERCAP, device: str = "cpu"):
        self.device = device
        self.nvml = None
        self.handle = None
        self.gpu_reason: str | None = None
        if gpu_index is None:
            self.gpu_reason = NO_GPU
        else:
            if nvml is None:
                ok, reason = nvml_available()
                if ok:
                    import pynvml as nvml
                else:
                    self.gpu_reason = reason
            if nvml is not None:
                try:
                    self.nvml = nvml
                    self.handle = handle if handle is not None else nvml.nvmlDeviceGetHandleByIndex(gpu_index)
                    nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle)
                except Exception as exc:
                    self.nvml = None
                    self.gpu_reason = f"NVML total-energy counter unavailable: {type(exc).__name__}: {exc}"
        self.clock = clock  # tests may set a fake clock
        self.rapl, self.cpu_reason = rapl_domains(rapl_root)
        self.rapl_max: dict[str, int] = {}
        for name, path in self.rapl.items():
            try:
                self.rapl_max[name] = int((path.parent / "max_energy_range_uj").read_text())
            except OSError:
                pass

    def read(self) -> EnergyReading:
        gpu = None
        if self.nvml is not None:
            gpu = float(self.nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle))
        rapl = {}
        for name, path in self.rapl.items():
            rapl[name] = int(path.read_text())
        return EnergyReading(self.clock(), gpu, rapl)

    def delta(self, r0: EnergyReading, r1: EnergyReading) -> dict[str, Any]:
        dt = r1.t - r0.t
        out: dict[str, Any] = {"duration_s": dt}
        if r0.gpu_mj is None or r1.gpu_mj is None:
            out.update(gpu_energy_j=None, gpu_avg_power_w=None, gpu_energy_reason=self.gpu_reason)
        elif r1.gpu_mj <= r0.gpu_mj:
            out.update(gpu_energy_j=None, gpu_avg_power_w=None,
                       gpu_energy_reason=f"NVML energy counter did not advance over {dt:.3f} s")
        else:
            joules = (r1.gpu_mj - r0.gpu_mj) / 1000.0
            out.update(gpu_energy_j=joules, gpu_avg_power_w=joules / dt if dt > 0 else None, gpu_energy_reason=None)
        if not self.rapl:
            out.update(cpu_energy_j=None, cpu_domains_j=None, cpu_energy_reason=self.cpu_reason)
        else:
            domains = {}
            for name in self.rapl:
                d = r1.rapl_uj[name] - r0.rapl_uj[name]
                if d < 0 and name in self.rapl_max:  # counter wrapped
                    d += self.rapl_max[name]
                domains[name] = d / 1e6
            pkg = [v for k, v in domains.items() if k.startswith("package")]
            total = sum(pkg) + sum(v for k, v in domains.items() if k == "dram")
            out.update(cpu_energy_j=total if pkg else None, cpu_domains_j=domains,
                       cpu_energy_reason=None if pkg else "no RAPL package domain readable")
        return out

    @contextlib.contextmanager
    def window(self) -> Iterator[dict[str, Any]]:
        """``with meter.window() as e: ...`` then ``e["gpu_energy_j"]`` etc. Syncs CUDA at the edges."""
        result: dict[str, Any] = {}
        cuda_sync(self.device)
        r0 = self.read()
        try:
            yield result
        finally:
            cuda_sync(self.device)
            result.update(self.delta(r0, self.read()))

    def describe(self) -> dict[str, Any]:
        return {
            "gpu_counter": self.nvml is not None,
            "gpu_reason": self.gpu_reason,
            "rapl_domains": list(self.rapl),
            "cpu_reason": self.cpu_reason,
        }


# ---------------------------------------------------------------------------------------
# Energy per image over a sustained window
# ---------------------------------------------------------------------------------------

SUSTAINED_WINDOW_S = 30.0  # at least this much steady work per J/image
WARMUP_S = 60.0  # work before the window, to bring the board to temperature
IDLE_S = 5.0  # idle power is measured over this long before any work
CHUNK_S = 0.5  # each run(n) call lasts about this long (the board is sampled between calls)


def _stats(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {"start": values[0], "end": values[-1], "min": min(values), "max": max(values),
            "mean": sum(values) / len(values)}


def _board(samples: list[dict[str, Any]], reason: str | None) -> dict[str, Any]:
    """Temperature, SM clock and throttle reasons over the samples taken during a phase."""
    from common.measure.samplers import decode_throttle

    if reason is not None:
        return {"samples": 0, "temperature_c": None, "sm_clock_mhz": None, "throttle_reasons": None, "reason": reason}
    pick = lambda k: [s[k] for s in samples if s.get(k) is not None]  # noqa: E731
    masks = pick("throttle_mask")
    reasons = sorted({r for m in masks for r in decode_throttle(m)}) if masks else None
    return {"samples": len(samples), "temperature_c": _stats(pick("temperature_c")),
            "sm_clock_mhz": _stats(pick("sm_clock_mhz")), "throttle_reasons": reasons,
            "reason": None if samples else "no board sample taken"}


def _per_image(window: dict[str, Any], idle: dict[str, Any], images: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for dev in ("gpu", "cpu"):
        e = window.get(f"{dev}_energy_j")
        p_idle = idle.get(f"{dev}_avg_power_w") if dev == "gpu" else idle.get("cpu_power_w")
        out[f"{dev}_j_per_image"] = e / images if e is not None and images else None
        out[f"{dev}_j_per_image_above_idle"] = ((e - p_idle * window["duration_s"]) / images
                                                if e is not None and p_idle is not None and images else None)
    return out


def measure_idle(meter: EnergyMeter, seconds: float = IDLE_S,
                 sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
    """Power with nothing running, from the meter's counters over ``seconds``: the board's
    (NVML energy counter) and, where RAPL is readable, the CPU's; None with the reason where not."""
    with meter.window() as idle:
        sleep(seconds)
    return {"duration_s": idle["duration_s"], "gpu_avg_power_w": idle["gpu_avg_power_w"],
            "gpu_reason": idle["gpu_energy_reason"], "cpu_energy_reason": idle["cpu_energy_reason"],
            "cpu_power_w": (idle["cpu_energy_j"] / idle["duration_s"]
                            if idle["cpu_energy_j"] is not None and idle["duration_s"] > 0 else None)}


def board_means(samples: list[dict[str, Any]], windows: list[tuple[float, float]]) -> dict[str, Any]:
    """Mean temperature, SM clock, power and utilization, and the union of throttle reasons,
    over the GPU samples inside ``windows`` ((start, end) on the samples' clock): the board
    beside a J/image measured over those windows (the ladder's sustained windows)."""
    from common.measure.samplers import decode_throttle

    inside = [s for s in samples if any(a <= s["t"] <= b for a, b in windows)]

    def mean(key):
        vals = [s[key] for s in inside if s.get(key) is not None]
        return sum(vals) / len(vals) if vals else None

    mask = 0
    for s in inside:
        mask |= int(s.get("throttle_mask") or 0)
    return {"samples": len(inside), "temperature_c": mean("temperature_c"), "sm_clock_mhz": mean("sm_clock_mhz"),
            "power_w": mean("power_w"), "gpu_util_pct": mean("gpu_util_pct"),
            "throttle_reasons": decode_throttle(mask) if inside else None}


def sustained_energy(run: Callable[[int], int], meter: EnergyMeter, monitor: Any = None, device: str | None = None,
                     window_s: float = SUSTAINED_WINDOW_S, warmup_s: float = WARMUP_S, idle_s: float = IDLE_S,
                     chunk_s: float = CHUNK_S, sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
    """J/image over at least ``window_s`` of steady work, after ``warmup_s`` of the same work.

    ``run(n)`` does n steps and returns the images they processed. Idle power is measured over
    ``idle_s`` before any work; the board (``monitor``: a sampler whose ``sample_once()`` gives
    temperature_c, sm_clock_mhz and throttle_mask, e.g. a GPUSampler; None where there is none)
    is sampled between calls through warm-up and window, so its temperature, SM clock and
    throttle reasons stand beside the J/image. Energy comes from the meter's counters only."""
    device = device or meter.device
    clk = meter.clock
    board_reason = None if monitor is not None else "no board sampler (no GPU in this measurement)"
    idle_power = measure_idle(meter, idle_s, sleep)
    t0 = clk()
    images = run(1)
    cuda_sync(device)
    per_step = max(clk() - t0, 1e-6)
    n = max(1, int(chunk_s / per_step))
    warm_samples = [monitor.sample_once()] if monitor is not None else []
    while clk() - t0 < warmup_s:
        images += run(n)
        if monitor is not None:
            warm_samples.append(monitor.sample_once())
    warmup = {"duration_s": clk() - t0, "images": images, "steps_per_call": n, **_board(warm_samples, board_reason)}
    win_samples, win_images = [], 0
    with meter.window() as win:
        start = clk()
        while clk() - start < window_s:
            win_images += run(n)
            if monitor is not None:
                win_samples.append(monitor.sample_once())
    result = {"requested_window_s": window_s, "window_s": win["duration_s"], "images": win_images,
              "images_per_s": win_images / win["duration_s"] if win["duration_s"] > 0 else None,
              **{k: win[k] for k in ("gpu_energy_j", "gpu_avg_power_w", "gpu_energy_reason", "cpu_energy_j",
                                     "cpu_energy_reason")},
              **_per_image(win, idle_power, win_images),
              "board": _board(win_samples, board_reason), "warmup": warmup, "idle": idle_power}
    return result
