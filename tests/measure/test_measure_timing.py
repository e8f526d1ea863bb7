import time

import pytest

from common.measure.stats import Summary, ratio
from common.measure.timing import Timer


def test_sleep_200ms_measures_200ms_within_5_percent():
    timer = Timer("cpu")
    for _ in range(3):
        with timer.window("sleep"):
            time.sleep(0.2)
    med = timer.summary("sleep").median
    assert abs(med - 0.2) / 0.2 < 0.05, med


def test_windows_nest_and_warmup_is_excluded():
    timer = Timer("cpu", tag="t")
    with timer.warmup():
        with timer.window("step", step=0):
            time.sleep(0.03)
    with timer.window("step", step=1):
        with timer.window("inner", step=1):
            time.sleep(0.01)
    assert timer.durations("step") == [timer.spans[-1].duration]
    assert len(timer.durations("step", include_warmup=True)) == 2
    inner, outer = timer.spans[1], timer.spans[2]
    assert inner.depth == 1 and outer.depth == 0
    assert outer.start <= inner.start <= inner.end <= outer.end
    assert timer.per_step(["inner"]) == {1: {"inner": inner.duration}}


def test_spans_share_the_sampler_clock():
    from common.measure.samplers import CPUSampler, wait_for_samples

    timer = Timer("cpu")
    with CPUSampler(hz=50) as s:
        with timer.window("w"):
            wait_for_samples(s, 5)
    span = timer.spans[0]
    inside = [x for x in s.snapshot() if span.start <= x["t"] <= span.end]
    assert inside, "samples taken during the window must fall inside the span on the same clock"


def test_summary_statistics_and_instability():
    s = Summary.from_values([1.0, 2.0, 3.0, 4.0, 100.0], "ms")
    assert s.median == 3.0 and s.n == 5 and s.unit == "ms"
    assert s.p5 <= s.median <= s.p95 <= s.p99
    assert s.ci95[0] <= s.median <= s.ci95[1]
    assert s.unstable  # IQR 2 > 10% of 3
    stable = Summary.from_values([10.0, 10.1, 9.9, 10.0], "s")
    assert not stable.unstable
    assert Summary.from_dict(stable.to_dict()) == stable
    with pytest.raises(ValueError):
        Summary.from_values([], "s")
    with pytest.raises(ValueError):
        Summary.from_values([1.0, float("nan")], "s")


def test_ratio_with_interval():
    slow = [2.0, 2.1, 1.9, 2.0, 2.05]
    fast = [1.0, 1.05, 0.95, 1.0, 1.0]
    r = ratio(slow, fast)
    assert r.value == pytest.approx(2.0)
    assert r.ci95[0] <= r.value <= r.ci95[1]
    assert 1.7 < r.ci95[0] and r.ci95[1] < 2.3
