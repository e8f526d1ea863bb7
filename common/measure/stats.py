"""Statistics from raw samples: median, mean, percentiles, IQR, std, bootstrap 95% intervals,
an instability flag, and ratios (speedups) with intervals. Raw values are always kept.

The resamples of the intervals and the instability threshold are the run's settings
(BOOTSTRAP_RESAMPLES, UNSTABLE_IQR_FRACTION): the engine and the comparison run inside
``using(settings)``; callers outside one get config.py's defaults (the values below).

Every interval says what it is (``interval_kind``):
- ``"window range"``: the values are windows of one process (they share its warm-up, clocks,
  allocator and data order, so they are not independent): the interval is their min-max
  (for a ratio of medians, the extreme ratios min/max and max/min). It is not a confidence
  interval and is never called one.
- ``"bootstrap CI over independent repeats"``: the values are independent repeats (separate
  processes, or separate epochs of a run): a 95% bootstrap interval of the median.
``ci95`` is kept as an alias of ``interval`` until every reader uses ``interval`` and
``interval_kind`` (records written before the kinds existed carry only ``ci95``)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

UNSTABLE_IQR_FRACTION = 0.10  # config.UNSTABLE_IQR_FRACTION's default (tests/measure checks they agree)
BOOTSTRAP_RESAMPLES = 2000  # config.BOOTSTRAP_RESAMPLES's default
CI_LEVEL = 0.95  # the intervals' coverage (2.5th to 97.5th percentile of the resampled statistic)
_current = {"resamples": BOOTSTRAP_RESAMPLES, "unstable_fraction": UNSTABLE_IQR_FRACTION}


@contextlib.contextmanager
def using(resamples: int, unstable_fraction: float) -> Iterator[None]:
    """Within the block, summaries and ratios use these resamples and this instability threshold."""
    before = dict(_current)
    _current.update(resamples=int(resamples), unstable_fraction=float(unstable_fraction))
    try:
        yield
    finally:
        _current.update(before)


def current() -> dict[str, float]:
    """The resamples and instability threshold in force now."""
    return dict(_current)
WINDOW_RANGE = "window range"
REPEATS_CI = "bootstrap CI over independent repeats"
LEGACY = "bootstrap over windows of one process (record written before interval kinds)"
INTERVAL_LABELS = {WINDOW_RANGE: "window range (min-max)", REPEATS_CI: "95% CI over independent repeats",
                   LEGACY: "bootstrap over windows (not a CI)"}


def interval_label(kind: str | None) -> str:
    """The words a figure or table puts beside an interval of this kind."""
    return INTERVAL_LABELS.get(kind or LEGACY, kind or LEGACY)


def interval_of(d: dict | None) -> tuple[tuple[float, float] | None, str]:
    """((low, high) or None, kind) of a Summary or Ratio dict, old records included."""
    if not d:
        return None, WINDOW_RANGE
    iv = d.get("interval") or d.get("ci95")
    return (tuple(iv) if iv else None), d.get("interval_kind") or LEGACY


def _bootstrap_median_ci(values: np.ndarray, resamples: int, seed: int) -> tuple[float, float]:
    if values.size < 2:
        return float(values[0]), float(values[0])
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, values.size, size=(resamples, values.size))
    meds = np.median(values[idx], axis=1)
    lo, hi = np.percentile(meds, [2.5, 97.5])
    return float(lo), float(hi)


@dataclass
class Summary:
    """Summary of repeated measurements of one quantity, with its unit and raw values."""

    unit: str
    n: int
    median: float
    mean: float
    std: float
    p5: float
    p95: float
    p99: float
    iqr: float
    ci95: tuple[float, float]  # alias of ``interval`` (see the module docstring)
    unstable: bool
    values: list[float] = field(repr=False)
    interval: tuple[float, float] = (0.0, 0.0)
    interval_kind: str = WINDOW_RANGE

    @classmethod
    def from_values(
        cls,
        values: Sequence[float],
        unit: str,
        resamples: int | None = None,
        unstable_fraction: float | None = None,
        seed: int = 0,
        independent: bool = False,
    ) -> "Summary":
        """``independent=True`` only where each value comes from a separate process or a separate
        epoch: then the interval is a bootstrap CI of the median, else the window range."""
        resamples = _current["resamples"] if resamples is None else resamples
        unstable_fraction = _current["unstable_fraction"] if unstable_fraction is None else unstable_fraction
        arr = np.asarray([float(v) for v in values], dtype=np.float64)
        if arr.size == 0:
            raise ValueError("Summary.from_values needs at least one value")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"non-finite measurement in {arr.tolist()}")
        q25, q50, q75 = np.percentile(arr, [25, 50, 75])
        iqr = float(q75 - q25)
        if independent:
            interval, kind = _bootstrap_median_ci(arr, resamples, seed), REPEATS_CI
        else:
            interval, kind = (float(arr.min()), float(arr.max())), WINDOW_RANGE
        return cls(
            unit=unit,
            n=int(arr.size),
            median=float(q50),
            mean=float(arr.mean()),
            std=float(arr.std(ddof=1)) if arr.size > 1 else 0.0,
            p5=float(np.percentile(arr, 5)),
            p95=float(np.percentile(arr, 95)),
            p99=float(np.percentile(arr, 99)),
            iqr=iqr,
            ci95=interval,
            unstable=bool(q50 != 0 and iqr > unstable_fraction * abs(q50)),
            values=arr.tolist(),
            interval=interval,
            interval_kind=kind,
        )

    @property
    def independent(self) -> bool:
        return self.interval_kind == REPEATS_CI

    def to_dict(self) -> dict:
        d = asdict(self)
        d["ci95"] = list(self.ci95)
        d["interval"] = list(self.interval)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Summary":
        d = dict(d)
        d["ci95"] = tuple(d["ci95"])
        d["interval"] = tuple(d.get("interval") or d["ci95"])
        d.setdefault("interval_kind", LEGACY)
        return cls(**d)

    def scaled(self, factor: float, unit: str) -> "Summary":
        """The same measurement in another unit (e.g. s -> ms); the interval scales along."""
        return Summary.from_values([v * factor for v in self.values], unit, independent=self.independent)

    def rate(self, work: float, unit: str) -> "Summary":
        """Turn durations into rates: work / duration per repeat (e.g. images / s)."""
        return Summary.from_values([work / v for v in self.values], unit, independent=self.independent)


@dataclass
class Ratio:
    """A ratio of medians (e.g. a speedup) with an interval of the kind ``interval_kind``."""

    value: float
    ci95: tuple[float, float]  # alias of ``interval`` (see the module docstring)
    numerator_median: float
    denominator_median: float
    unit: str = "x"
    interval: tuple[float, float] = (0.0, 0.0)
    interval_kind: str = WINDOW_RANGE

    def to_dict(self) -> dict:
        d = asdict(self)
        d["ci95"] = list(self.ci95)
        d["interval"] = list(self.interval)
        return d


def ratio(
    numerator: Sequence[float], denominator: Sequence[float], resamples: int | None = None, seed: int = 0,
    independent: bool = False,
) -> Ratio:
    """median(numerator) / median(denominator). For a speedup pass the slow side's times as
    numerator (or the fast side's throughputs). The interval: with ``independent=True`` (each
    value a separate process or epoch) a 95% bootstrap CI resampling both sides; otherwise
    the window range, from min(numerator)/max(denominator) to max(numerator)/min(denominator)."""
    resamples = _current["resamples"] if resamples is None else resamples
    a = np.asarray(numerator, dtype=np.float64)
    b = np.asarray(denominator, dtype=np.float64)
    if a.size == 0 or b.size == 0:
        raise ValueError("ratio needs values on both sides")
    if np.any(b == 0):
        raise ValueError("ratio with a zero denominator")
    point = float(np.median(a) / np.median(b))
    if independent:
        rng = np.random.default_rng(seed)
        ra = np.median(a[rng.integers(0, a.size, size=(resamples, a.size))], axis=1)
        rb = np.median(b[rng.integers(0, b.size, size=(resamples, b.size))], axis=1)
        lo, hi = (float(x) for x in np.percentile(ra / rb, [2.5, 97.5]))
        kind = REPEATS_CI
    else:
        pairs = [a.min() / b.max(), a.max() / b.min()]
        lo, hi, kind = float(min(pairs)), float(max(pairs)), WINDOW_RANGE
    return Ratio(point, (lo, hi), float(np.median(a)), float(np.median(b)), interval=(lo, hi), interval_kind=kind)


def t_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high): Student-t interval of the mean of independent values."""
    from scipy import stats as _st

    arr = np.asarray(values, dtype=np.float64)
    if arr.size < 2:
        raise ValueError("a t interval needs at least two values")
    mean = float(arr.mean())
    half = float(_st.t.ppf(0.5 + level / 2, arr.size - 1) * arr.std(ddof=1) / np.sqrt(arr.size))
    return mean, mean - half, mean + half


def paired_overhead(baseline: Sequence[float], treated: Sequence[float]) -> dict:
    """Overhead of a treatment measured in interleaved windows A0 B0 A1 B1 ... B(n-1) An
    (``baseline`` = the n+1 rates A, ``treated`` = the n rates B): each B is paired with the
    mean of the two A windows around it, which cancels a linear drift of clocks or temperature.
    Returns the mean overhead ``1 - B / A`` and its 95% t interval over the n pairs (the pairs
    are independent repeats, so this is a confidence interval)."""
    a = np.asarray(baseline, dtype=np.float64)
    b = np.asarray(treated, dtype=np.float64)
    if a.size != b.size + 1:
        raise ValueError(f"interleaved rounds need one more baseline window than treated ({a.size} vs {b.size})")
    ref = (a[:-1] + a[1:]) / 2
    diffs = 1.0 - b / ref
    out = {"pairs": int(b.size), "differences": diffs.tolist(), "mean": float(diffs.mean()) if b.size else None,
           "ci95": None, "half_width": None, "interval_kind": "t interval over paired interleaved rounds"}
    if b.size >= 2:
        mean, lo, hi = t_interval(diffs)
        out.update(mean=mean, ci95=[lo, hi], half_width=(hi - lo) / 2)
    return out
