"""Samplers read in families: few NVML calls per tick, slow families at a slow rate, and the
read time of each family in overhead()."""

from __future__ import annotations

import time

from common.measure.sampler_base import Sampler
from common.measure.samplers import CPUSampler, GPUSampler
from tests.measure.nvml_fake import FakeNVML


def test_gpu_tick_reads_energy_and_power_from_field_values_calls():
    fake = FakeNVML(power_mw=312_500)
    s = GPUSampler(hz=10, nvml=fake, handle=object())
    fake.calls.clear()
    first = s.sample_once()  # a slow tick: the PCIe counters too, in one batched call
    assert fake.calls.count("field_values") == 4 and len(fake.calls) == 9, fake.calls
    fake.calls.clear()
    sample = s.sample_once()
    assert fake.calls.count("field_values") == 3  # energy, average power, instant power: one call each
    assert "energy" not in fake.calls and "power" not in fake.calls  # no single-call fallback
    assert len(fake.calls) == 8, fake.calls
    assert sample["power_w"] == 312.5 and sample["power_instant_w"] == 312.5
    assert sample["energy_mj"] == fake.energy
    assert first["pcie_tx_bytes"] == 4096 and "pcie_tx_bytes" not in sample
    assert s.errors == {}


def test_refused_batched_field_falls_back_or_is_missing_with_reason():
    fake = FakeNVML(refused_fields={185, 197})  # average power and PCIe TX refused by the driver
    s = GPUSampler(hz=10, nvml=fake, handle=object())
    first = s.sample_once()
    assert first["power_w"] == 250.0  # from nvmlDeviceGetPowerUsage instead
    assert first["pcie_tx_bytes"] is None and "return code 3" in s.errors["pcie_tx_bytes"]
    assert "power_w" not in s.errors
    fake.calls.clear()
    s.sample_once()
    assert fake.calls.count("power") == 1 and fake.calls.count("field_values") == 2  # energy, instant power
    assert s.to_dict()["single_call_fields"] == ["power_w"]


def test_binding_without_field_values_reads_energy_and_power_one_by_one():
    fake = FakeNVML(batched=False)
    s = GPUSampler(hz=10, nvml=fake, handle=object())
    a, b = s.sample_once(), s.sample_once()
    assert a["power_w"] == 250.0 and b["energy_mj"] > a["energy_mj"]
    assert a["power_instant_w"] is None and "nvmlDeviceGetFieldValues" in s.errors["power_instant_w"]


def test_gpu_temperature_is_nvml_value_and_missing_sensor_gives_none_with_reason():
    s = GPUSampler(hz=10, nvml=FakeNVML(temperature=73), handle=object())
    assert s.sample_once()["temperature_c"] == 73
    s = GPUSampler(hz=10, nvml=FakeNVML(temperature=73, broken={"temperature"}), handle=object())
    assert s.sample_once()["temperature_c"] is None
    assert "Not Supported" in s.errors["temperature_c"]


class _Slowish(Sampler):
    def __init__(self):
        super().__init__(10, slow_every=5, tick_budget_ms=None)
        self.add_field("fast", lambda: 1)
        self.add_family("slow", self._slow, ("a", "b"), slow=True)

    def _slow(self):
        time.sleep(0.004)
        return {"a": 2, "b": 3}


def test_slow_family_read_every_nth_tick_and_absent_in_between():
    s = _Slowish()
    samples = [s.sample_once() for _ in range(10)]
    assert [("a" in x) for x in samples] == [True, False, False, False, False] * 2
    fam = s.overhead()["families"]
    assert fam["fast"]["reads"] == 10 and fam["slow"]["reads"] == 2 and fam["slow"]["slow"]
    assert fam["slow"]["mean_ms"] >= 4.0 > fam["fast"]["mean_ms"]
    assert s.overhead()["max_read_ms"] >= 4.0


def test_cpu_sampler_slow_families_and_overhead_per_family():
    s = CPUSampler(hz=20, slow_every=3, tick_budget_ms=None)  # families as registered (no budget moves)
    samples = [s.sample_once() for _ in range(6)]
    assert ["children_rss_mib" in x for x in samples] == [True, False, False] * 2
    assert all(x["process_rss_mib"] > 0 and x["cpu_total_pct"] is not None for x in samples)
    fam = s.overhead()["families"]
    assert fam["children_rss_mib"]["reads"] == 2 and fam["cpu_per_core_pct"]["reads"] == 6
    assert set(s.to_dict()["slow_fields"]) == {"cpu_freq_mhz", "children_rss_mib", "temperatures_c"}


def test_pcie_false_leaves_the_pcie_counters_out():
    s = GPUSampler(hz=10, nvml=FakeNVML(), handle=object(), pcie=False)
    sample = s.sample_once()
    assert "pcie_tx_bytes" not in sample and sample["power_w"] == 250.0 and s.errors == {}


class _Costly(Sampler):
    """A family that costs 2 ms a read beside a free one."""

    def __init__(self, budget=0.5):
        super().__init__(10, slow_every=10, tick_budget_ms=budget)
        self.add_field("cheap", lambda: 1)
        self.add_field("costly", self._costly)

    @staticmethod
    def _costly():
        end = time.perf_counter() + 0.002
        while time.perf_counter() < end:
            pass
        return 2


def test_costly_family_is_read_less_often_to_keep_the_tick_budget():
    s = _Costly()
    samples = [s.sample_once() for _ in range(100)]
    fam = s.overhead()["families"]
    assert fam["costly"]["every"] == 10 and fam["cheap"]["every"] == 1
    assert "2.0" in s.demoted["costly"] or "ms a read" in s.demoted["costly"]
    assert fam["costly"]["demoted"] == s.demoted["costly"] and "cheap" not in s.demoted
    reads = [i for i, x in enumerate(samples) if "costly" in x]
    assert reads[:2] == [0, 1] and all(i % 10 == 0 for i in reads[2:]) and len(reads) <= 2 + 10
    assert s.overhead()["mean_read_ms"] < 1.0  # read on every tick it would be >= 2 ms
    assert 0.15 < s.overhead()["steady_tick_ms"] < 0.5  # 2 ms every 10th tick, the first read left out


def test_no_budget_reads_every_family_as_registered():
    s = _Costly(budget=None)
    samples = [s.sample_once() for _ in range(12)]
    assert all("costly" in x for x in samples) and s.demoted == {}


def test_gpu_sampler_reads_only_the_slow_nvml_field_less_often():
    class SlowInstantPower(FakeNVML):
        def nvmlDeviceGetFieldValues(self, handle, ids):
            if 186 in ids:  # as one field took ~4 ms a read on an H200 (run W)
                end = time.perf_counter() + 0.004
                while time.perf_counter() < end:
                    pass
            return super().nvmlDeviceGetFieldValues(handle, ids)

    s = GPUSampler(hz=10, nvml=SlowInstantPower(), handle=object(), pcie=False)
    samples = [s.sample_once() for _ in range(30)]
    fam = s.to_dict()["overhead"]["families"]
    assert list(s.demoted) == ["power_instant_w"] and fam["power_instant_w"]["every"] >= 10
    assert fam["power_w"]["every"] == 1 and fam["energy_mj"]["every"] == 1
    assert all(x["power_w"] == 250.0 and x["energy_mj"] is not None for x in samples)
    assert s.to_dict()["overhead"]["tick_budget_ms"] == 0.5
