"""Energy over a window from hardware counters: NVML's total-energy counter (mJ) for the
GPU, RAPL ``energy_uj`` counters for the CPU package/DRAM. A counter that does not exist or
cannot be read gives ``None`` plus the reason; nothing is estimated from power or TDP."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
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


class EnergyMeter:
    def __init__(self, gpu_index: int | None = None, nvml: Any = None, handle: Any = None,
                 rapl_root: Path = POWERCAP, device: str = "cpu"):
        self.device = device
        self.nvml = None
        self.handle = None
        self.gpu_reason: str | None = None
        if gpu_index is None:
            self.gpu_reason = "no GPU in this measurement"
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
        return EnergyReading(clock(), gpu, rapl)

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
