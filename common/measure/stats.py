"""Statistics from raw samples: median, mean, percentiles, IQR, std, bootstrap 95% intervals,
an instability flag, and ratios (speedups) with intervals. Raw values are always kept.

The resamples of the intervals and the instability threshold are the run's settings
(BOOTSTRAP_RESAMPLES, UNSTABLE_IQR_FRACTION): the engine and the comparison run inside
``using(settings)``; callers outside one get config.py's defaults (the values below)."""

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
    ci95: tuple[float, float]
    unstable: bool
    values: list[float] = field(repr=False)

    @classmethod
    def from_values(
        cls,
        values: Sequence[float],
        unit: str,
        resamples: int | None = None,
        unstable_fraction: float | None = None,
        seed: int = 0,
    ) -> "Summary":
        resamples = _current["resamples"] if resamples is None else resamples
        unstable_fraction = _current["unstable_fraction"] if unstable_fraction is None else unstable_fraction
        arr = np.asarray([float(v) for v in values], dtype=np.float64)
        if arr.size == 0:
            raise ValueError("Summary.from_values needs at least one value")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"non-finite measurement in {arr.tolist()}")
        q25, q50, q75 = np.percentile(arr, [25, 50, 75])
        iqr = float(q75 - q25)
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
            ci95=_bootstrap_median_ci(arr, resamples, seed),
            unstable=bool(q50 != 0 and iqr > unstable_fraction * abs(q50)),
            values=arr.tolist(),
        )

    def to_dict(self) -> dict:
        d = asdict(self)
        d["ci95"] = list(self.ci95)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Summary":
        d = dict(d)
        d["ci95"] = tuple(d["ci95"])
        return cls(**d)

    def scaled(self, factor: float, unit: str) -> "Summary":
        """The same measurement in another unit (e.g. s -> ms); the interval scales along."""
        return Summary.from_values([v * factor for v in self.values], unit)

    def rate(self, work: float, unit: str) -> "Summary":
        """Turn durations into rates: work / duration per repeat (e.g. images / s)."""
        return Summary.from_values([work / v for v in self.values], unit)


@dataclass
class Ratio:
    """A ratio of medians (e.g. a speedup) with a 95% bootstrap interval."""

    value: float
    ci95: tuple[float, float]
    numerator_median: float
    denominator_median: float
    unit: str = "x"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["ci95"] = list(self.ci95)
        return d


def ratio(
    numerator: Sequence[float], denominator: Sequence[float], resamples: int | None = None, seed: int = 0
) -> Ratio:
    """median(numerator) / median(denominator) with an interval from resampling both sides
    independently. For a speedup pass the slow side's times as numerator (or the fast
    side's throughputs)."""
    resamples = _current["resamples"] if resamples is None else resamples
    a = np.asarray(numerator, dtype=np.float64)
    b = np.asarray(denominator, dtype=np.float64)
    if a.size == 0 or b.size == 0:
        raise ValueError("ratio needs values on both sides")
    if np.any(b == 0):
        raise ValueError("ratio with a zero denominator")
    point = float(np.median(a) / np.median(b))
    rng = np.random.default_rng(seed)
    ra = np.median(a[rng.integers(0, a.size, size=(resamples, a.size))], axis=1)
    rb = np.median(b[rng.integers(0, b.size, size=(resamples, b.size))], axis=1)
    lo, hi = np.percentile(ra / rb, [2.5, 97.5])
    return Ratio(point, (float(lo), float(hi)), float(np.median(a)), float(np.median(b)))
