"""Intervals say what they are: the window range of one process, or a bootstrap CI over
independent repeats; figures and the report name the kind."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from common.measure.stats import LEGACY, REPEATS_CI, WINDOW_RANGE, Summary, interval_label, interval_of, ratio

REPO = Path(__file__).resolve().parents[2]


def test_windows_of_one_process_give_their_min_max_named_window_range():
    s = Summary.from_values([3.0, 1.0, 2.0, 5.0, 4.0], "img/s")
    assert s.interval == (1.0, 5.0) and s.interval_kind == WINDOW_RANGE
    d = s.to_dict()
    assert d["interval_kind"] == "window range" and d["interval"] == [1.0, 5.0]
    assert s.scaled(2.0, "x").interval == (2.0, 10.0) and s.scaled(2.0, "x").interval_kind == WINDOW_RANGE
    assert Summary.from_dict(d) == s


def test_independent_repeats_give_a_bootstrap_ci_like_scipys():
    from scipy.stats import bootstrap

    values = np.random.default_rng(0).normal(100.0, 5.0, 200)
    s = Summary.from_values(values, "img/s", independent=True)
    assert s.interval_kind == REPEATS_CI and s.independent
    ref = bootstrap((values,), np.median, confidence_level=0.95, method="percentile", random_state=1)
    lo, hi = ref.confidence_interval
    assert s.interval[0] == pytest.approx(lo, abs=0.6) and s.interval[1] == pytest.approx(hi, abs=0.6)
    assert s.interval[1] - s.interval[0] < values.max() - values.min()  # not the range


def test_ratio_window_range_is_the_extreme_pairwise_ratios():
    a, b = [2.0, 2.1, 1.9, 2.2], [1.0, 1.05, 0.95]
    r = ratio(a, b)
    every = [x / y for x, y in itertools.product(a, b)]  # brute force over all pairs
    assert r.interval == pytest.approx((min(every), max(every))) and r.interval_kind == WINDOW_RANGE
    assert r.value == pytest.approx(np.median(a) / np.median(b))
    ci = ratio(a * 5, b * 5, independent=True)
    assert ci.interval_kind == REPEATS_CI and min(every) <= ci.interval[0] <= ci.interval[1] <= max(every)


def test_old_records_are_read_and_named_for_what_they_were():
    old = {"median": 2.0, "ci95": [1.5, 2.5]}
    assert interval_of(old) == ((1.5, 2.5), LEGACY)
    assert "not a CI" in interval_label(LEGACY)
    assert interval_label(WINDOW_RANGE) == "window range (min-max)"
    assert interval_label(REPEATS_CI) == "95% CI over independent repeats"


def test_report_and_figures_name_the_kind():
    from common.plots.common import errbar, errbar_note
    from common.report import _interval_text

    win = Summary.from_values([1.0, 2.0, 3.0], "x").to_dict()
    rep = Summary.from_values([1.0, 2.0, 3.0], "x", independent=True).to_dict()
    assert _interval_text(ratio([2.0, 3.0], [1.0]).to_dict()) == "window range (min-max) 2.0-3.0"
    assert errbar_note([win]) == "error bars: window range (min-max)"
    assert errbar_note([win, rep]) == "error bars: window range (min-max) / 95% CI over independent repeats"
    assert errbar(win) == (2.0, [1.0, 1.0])


def test_no_figure_or_report_i_own_calls_a_window_spread_a_95_percent_ci():
    owned = [REPO / "common" / "report.py", *(REPO / "common" / "plots").glob("*.py")]
    lead_or_other = {"winning.py", "comparison.py"}
    for p in owned:
        if p.name in lead_or_other:
            continue
        assert "95% CI" not in p.read_text(), p


def test_the_comparison_never_calls_its_window_ranges_95_percent_intervals():
    """Every speedup of the comparison is a ratio of timed windows (a window range): its figures,
    tables, text and method statement must not call it a 95% interval or CI."""
    from common.comparison.speedups import speedup_entry

    class Side:
        levers = {}

        def __init__(self, v):
            self.v = v

        def values(self):
            return self.v

        def describe(self, v):
            return {"n": len(v), "median": float(np.median(v))}

    e = speedup_entry("training.recipe.end_to_end", "training", "images/s: recipe", "like-for-like",
                      Side([4.0, 5.0]), Side([1.0, 2.0]), True)
    assert e["interval_kind"] == WINDOW_RANGE
    owned = [*(REPO / "common" / "comparison").glob("*.py"), *(REPO / "common" / "plots" / "comparison").glob("*.py")]
    for p in owned:
        text = p.read_text()
        assert "95% interval" not in text and "95% CI" not in text, p
