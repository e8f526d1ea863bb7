"""The sampler-overhead benchmark: paired interleaved rounds that cancel drift, a stopping rule
on the interval's half-width, per-family read times and the JSON it writes."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace

import numpy as np
import pytest

from benchmarks import sampler_overhead as so
from common.measure.stats import paired_overhead


def test_pairing_with_flanking_windows_cancels_a_linear_drift():
    base = [100.0 + 3 * i for i in range(7)]  # the board warms: +3 img/s per window
    treated = [0.98 * (100.0 + 3 * i + 1.5) for i in range(6)]  # 2% slower than the drifted baseline
    out = paired_overhead(base, treated)
    assert out["mean"] == pytest.approx(0.02) and out["half_width"] == pytest.approx(0.0, abs=1e-9)
    naive = np.mean([1 - t / a for t, a in zip(treated, base)])  # pairing with the window before only
    assert abs(naive - 0.02) > 0.01


def test_interval_matches_an_independent_t_computation():
    rng = np.random.default_rng(3)
    base = list(100 + rng.normal(0, 1, 9))
    treated = list(99 + rng.normal(0, 1, 8))
    out = paired_overhead(base, treated)
    d = np.array([1 - t / ((a + b) / 2) for t, a, b in zip(treated, base[:-1], base[1:])])
    half = 2.364624251592785 * d.std(ddof=1) / np.sqrt(8)  # t(0.975, 7)
    assert out["ci95"] == pytest.approx([d.mean() - half, d.mean() + half])
    with pytest.raises(ValueError):
        paired_overhead(base[:-1], treated)


def _args(**kw):
    d = dict(device="cpu", hz=20.0, seconds=0.05, min_rounds=2, max_rounds=3, target=1.0, budget_s=30.0)
    d.update(kw)
    return SimpleNamespace(**d)


def test_rounds_stop_at_the_target_or_the_cap():
    step = lambda: time.sleep(0.002)  # noqa: E731
    loose = so.run_rounds(_args(target=1e6), step, 1, progress=lambda m: None)
    assert len(loose["with_samplers_img_s"]) == 2 and loose["target_met"]
    assert len(loose["baseline_img_s"]) == 3
    strict = so.run_rounds(_args(target=0.0), step, 1, progress=lambda m: None)
    assert len(strict["with_samplers_img_s"]) == 3 and not strict["target_met"]
    fams = strict["sampler_read_time"]["cpu"]["families"]
    assert fams["cpu_per_core_pct"]["reads"] > 0 and fams["cpu_per_core_pct"]["mean_ms"] > 0


def test_merge_overheads_weights_by_reads():
    one = {"cpu": {"samples": 2, "mean_read_ms": 1.0, "max_read_ms": 1.5,
                   "families": {"a": {"slow": False, "reads": 2, "mean_ms": 1.0, "max_ms": 1.5}}}}
    two = {"cpu": {"samples": 6, "mean_read_ms": 3.0, "max_read_ms": 4.0,
                   "families": {"a": {"slow": False, "reads": 6, "mean_ms": 3.0, "max_ms": 4.0}}}}
    m = so.merge_overheads([one, two])["cpu"]
    assert m["mean_read_ms"] == pytest.approx(2.5) and m["max_read_ms"] == 4.0
    assert m["families"]["a"] == {"slow": False, "reads": 8, "max_ms": 4.0, "mean_ms": pytest.approx(2.5),
                                  "every": None, "demoted": None}


def test_cli_writes_overhead_interval_and_family_times(tmp_path, capsys):
    out = tmp_path / "o.json"
    rc = so.main(["--seconds", "0.15", "--warmup-s", "0", "--min-rounds", "2", "--max-rounds", "2", "--batch", "4",
                  "--out", str(out)])
    assert rc == 0
    d = json.loads(out.read_text())
    assert d["overhead"]["pairs"] == 2 and len(d["overhead"]["ci95"]) == 2
    assert d["overhead"]["interval_kind"].startswith("t interval")
    assert "cpu_per_core_pct" in d["sampler_read_time"]["cpu"]["families"]
    assert d["unavailable"]["gpu"] and d["workload"]["network"] == "small"
    assert "overhead at 10 Hz" in capsys.readouterr().out
