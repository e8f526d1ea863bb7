import time
from pathlib import Path

import pytest

from common.measure.energy import EnergyMeter
from common.measure.samplers import CPUSampler, GPUSampler, Sampler, decode_throttle, rapl_domains
from tests.measure.nvml_fake import FakeNVML


def test_20hz_sampler_over_1s_gives_18_to_22_increasing_samples():
    with CPUSampler(hz=20) as s:
        time.sleep(1.0)
    samples = s.snapshot()
    assert 18 <= len(samples) <= 22, len(samples)
    ts = [x["t"] for x in samples]
    assert all(b > a for a, b in zip(ts, ts[1:]))
    assert s.overhead()["busy_fraction"] < 0.5


def test_fake_nvml_field_failure_keeps_every_other_field():
    fake = FakeNVML(broken={"temperature"})
    s = GPUSampler(hz=50, nvml=fake, handle=object())
    first = s.sample_once()
    second = s.sample_once()
    assert first["temperature_c"] is None and second["temperature_c"] is None
    assert "temperature_c" in s.errors and "Not Supported" in s.errors["temperature_c"]
    assert len(s.errors) == 1
    for sample in (first, second):
        assert sample["gpu_util_pct"] == 55
        assert sample["power_w"] == 250.0
        assert sample["memory_used_mib"] == 3072.0
        assert sample["sm_clock_mhz"] == 1980
    assert first["pcie_tx_bytes"] == 4096 and "pcie_tx_bytes" not in second  # PCIe: on the slow ticks only
    assert second["energy_mj"] > first["energy_mj"]
    assert decode_throttle(first["throttle_mask"]) == ["gpu_idle", "sw_power_cap"]


def test_broken_sensor_is_recorded_once_not_retried():
    calls = []

    class S(Sampler):
        def __init__(self):
            super().__init__(10)

            def bad():
                calls.append(1)
                raise OSError("gone")

            self.add_field("bad", bad)
            self.add_field("good", lambda: 1)

    s = S()
    for _ in range(3):
        out = s.sample_once()
    assert len(calls) == 1 and out == {"bad": None, "good": 1, "t": out["t"]}


def test_rate_out_of_range_is_refused():
    with pytest.raises(ValueError):
        CPUSampler(hz=500)


def test_no_rapl_gives_null_with_reason(tmp_path):
    domains, reason = rapl_domains(tmp_path / "nowhere")
    assert domains == {} and "does not exist" in reason
    meter = EnergyMeter(gpu_index=None, rapl_root=tmp_path / "nowhere")
    with meter.window() as e:
        time.sleep(0.01)
    assert e["cpu_energy_j"] is None and "does not exist" in e["cpu_energy_reason"]
    assert e["gpu_energy_j"] is None and e["gpu_energy_reason"]


def test_rapl_counters_read_and_wrap(tmp_path):
    zone = tmp_path / "intel-rapl:0"
    zone.mkdir()
    (zone / "name").write_text("package-0\n")
    (zone / "energy_uj").write_text("999000000\n")
    (zone / "max_energy_range_uj").write_text("1000000000\n")
    meter = EnergyMeter(gpu_index=None, rapl_root=tmp_path)
    r0 = meter.read()
    (zone / "energy_uj").write_text("1000000\n")  # wrapped past max
    out = meter.delta(r0, meter.read())
    assert out["cpu_energy_j"] == pytest.approx(2.0)


def test_gpu_energy_from_fake_counter():
    fake = FakeNVML()
    meter = EnergyMeter(gpu_index=0, nvml=fake, handle=object(), rapl_root=Path("/nonexistent"))
    with meter.window() as e:
        pass
    assert e["gpu_energy_j"] == pytest.approx(0.5)
    broken = EnergyMeter(gpu_index=0, nvml=FakeNVML(broken={"energy"}), handle=object())
    with broken.window() as e2:
        pass
    assert e2["gpu_energy_j"] is None and "Not Supported" in e2["gpu_energy_reason"]


def test_cpu_temperatures_are_the_sensors_values_or_none_with_reason(monkeypatch):
    """Known sensor values come through unchanged; no sensor gives None plus the reason."""
    import psutil

    class Entry:
        def __init__(self, label, current):
            self.label, self.current = label, current

    monkeypatch.setattr(psutil, "sensors_temperatures", lambda: {"coretemp": [Entry("Package id 0", 57.0),
                                                                              Entry("", 49.5)]}, raising=False)
    s = CPUSampler(hz=20)
    assert s.sample_once()["temperatures_c"] == {"coretemp/Package id 0": 57.0, "coretemp/1": 49.5}
    monkeypatch.setattr(psutil, "sensors_temperatures", lambda: {}, raising=False)
    s = CPUSampler(hz=20)
    assert s.sample_once()["temperatures_c"] is None
    assert "no temperature sensors" in s.errors["temperatures_c"]
