"""sustained_energy on a fake board: a clock that advances with the work, an energy counter that
integrates a known power (hot and hungry during warm-up, steady after), a known idle power."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.measure.energy import EnergyMeter, sustained_energy
from common.measure.samplers import GPUSampler
from tests.measure.nvml_fake import FakeNVML


class Board:
    """Fake time and a fake card: 60 W idle; at work 400 W for the first 20 s, then 300 W; 10 ms
    per step of 64 images; the temperature climbs 1 C per second of work up to 70 C; the SM clock
    drops from 1980 to 1830 MHz with a power-cap throttle once warm."""

    STEP_S, IMAGES = 0.01, 64

    def __init__(self):
        self.t, self.energy_mj, self.worked = 0.0, 0.0, 0.0

    def clock(self):
        return self.t

    def _advance(self, dt, watts):
        self.t += dt
        self.energy_mj += watts * dt * 1000.0

    def sleep(self, dt):
        self._advance(dt, 60.0)

    def run(self, n):
        for _ in range(n):
            self._advance(self.STEP_S, 400.0 if self.worked < 20.0 else 300.0)
            self.worked += self.STEP_S
        return n * self.IMAGES


class BoardNVML(FakeNVML):
    def __init__(self, board):
        super().__init__()
        self.board = board

    def nvmlDeviceGetTotalEnergyConsumption(self, h):
        return self.board.energy_mj

    def nvmlDeviceGetTemperature(self, h, sensor):
        return min(30 + self.board.worked, 70)

    def nvmlDeviceGetClockInfo(self, h, kind):
        return 1980 if self.board.worked < 20 else 1830

    def nvmlDeviceGetCurrentClocksEventReasons(self, h):
        return 0 if self.board.worked < 20 else 0x4


def _meter(board, nvml):
    m = EnergyMeter(gpu_index=0, nvml=nvml, handle=object(), rapl_root=Path("/nonexistent"))
    m.clock = board.clock
    return m


def test_j_per_image_is_the_steady_power_not_the_warm_up():
    board = Board()
    nvml = BoardNVML(board)
    out = sustained_energy(board.run, _meter(board, nvml), GPUSampler(10, nvml=nvml, handle=object()),
                           window_s=30, warmup_s=25, idle_s=5, sleep=board.sleep)
    assert out["window_s"] >= 30 and out["warmup"]["duration_s"] >= 25
    assert out["gpu_j_per_image"] == pytest.approx(300 * Board.STEP_S / Board.IMAGES, rel=1e-6)
    assert out["gpu_j_per_image_above_idle"] == pytest.approx(240 * Board.STEP_S / Board.IMAGES, rel=1e-6)
    assert out["idle"]["gpu_avg_power_w"] == pytest.approx(60.0)
    assert out["images_per_s"] == pytest.approx(Board.IMAGES / Board.STEP_S)
    b = out["board"]
    assert b["temperature_c"]["min"] >= 55 and b["temperature_c"]["max"] == 70
    assert b["sm_clock_mhz"]["mean"] == 1830 and b["throttle_reasons"] == ["sw_power_cap"]
    assert out["warmup"]["temperature_c"]["start"] < out["warmup"]["temperature_c"]["end"]
    assert out["cpu_j_per_image"] is None and "does not exist" in out["cpu_energy_reason"]


def test_without_warm_up_the_hungry_start_shows():
    board = Board()
    nvml = BoardNVML(board)
    out = sustained_energy(board.run, _meter(board, nvml), None, window_s=10, warmup_s=0, idle_s=1,
                           sleep=board.sleep)
    assert out["gpu_j_per_image"] > 1.2 * 300 * Board.STEP_S / Board.IMAGES
    assert out["board"]["temperature_c"] is None and "no board sampler" in out["board"]["reason"]


def test_no_energy_counter_gives_none_with_reason_on_a_real_cpu_run():
    import time

    meter = EnergyMeter(gpu_index=None, rapl_root=Path("/nonexistent"))
    out = sustained_energy(lambda n: (time.sleep(0.001 * n), 8 * n)[1], meter, window_s=0.2, warmup_s=0.05,
                           idle_s=0.01, chunk_s=0.02)
    assert out["images"] > 0 and out["window_s"] >= 0.2
    assert out["gpu_j_per_image"] is None and out["gpu_energy_reason"] == "no GPU in this measurement"
    assert out["idle"]["gpu_avg_power_w"] is None


def test_board_means_uses_only_samples_inside_the_windows():
    from common.measure.energy import board_means

    samples = [{"t": 0.5, "temperature_c": 90, "sm_clock_mhz": 100, "power_w": 1, "gpu_util_pct": 0,
                "throttle_mask": 0x20},
               {"t": 1.5, "temperature_c": 40, "sm_clock_mhz": 1980, "power_w": 600, "gpu_util_pct": 99,
                "throttle_mask": 0},
               {"t": 2.5, "temperature_c": 50, "sm_clock_mhz": 1900, "power_w": 620, "gpu_util_pct": 97,
                "throttle_mask": 0x4},
               {"t": 9.0, "temperature_c": 99, "sm_clock_mhz": 1, "power_w": 0, "gpu_util_pct": 0,
                "throttle_mask": 0x40}]
    b = board_means(samples, [(1.0, 2.0), (2.2, 3.0)])
    assert b["samples"] == 2 and b["temperature_c"] == 45 and b["sm_clock_mhz"] == 1940 and b["power_w"] == 610
    assert b["throttle_reasons"] == ["sw_power_cap"]  # only the inside samples' reasons
    assert board_means(samples, [(20.0, 30.0)])["throttle_reasons"] is None
