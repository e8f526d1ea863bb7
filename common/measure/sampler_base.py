"""The sampler base: a thread that reads sensor families on a deadline loop.

Each sampler runs a daemon thread with a monotonic deadline loop, a stop Event and a lock,
and is a context manager that joins its thread on exit. Samples carry ``t`` on the same
``perf_counter`` clock as timing spans. Fields are read in *families*: one call (or a few
cheap ones) that yields several fields, timed on its own, so ``overhead()`` says which
family costs what. A family marked slow is read on every ``slow_every``-th tick only and
its fields appear only in the samples of those ticks (no stale copies in between). A sampler
keeps its mean tick under ``TICK_BUDGET_MS``: after each tick, until every family has been read
twice, while the read time per tick (mean read, the first and possibly cold read left out, over
the read interval) of the families read twice so far sums to more than the budget, the family
that costs most per tick is read ten times less often (at most every ``MAX_EVERY``-th tick);
each such move is recorded in ``demoted`` with the read time that caused it. A field
whose sensor fails is recorded once in ``errors`` with its message and read as ``None``
from then on; the other fields go on.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from common.measure.timing import clock

MIN_HZ, MAX_HZ = 0.1, 100.0
SLOW_EVERY = 10  # slow families (walking /proc, hwmon, per-core sysfs) are read on every 10th tick
TICK_BUDGET_MS = 0.5  # mean read time per tick a sampler keeps under by reading costly families less often
MAX_EVERY = 100  # the least often a family is read: every 100th tick (every 10 s at 10 Hz)
BUDGET_AFTER_READS = 2  # reads of every family before the budget is checked (the first read can be a cold one)


class Missing:
    """A family reader's value for one field that could not be read (the reason is kept)."""

    def __init__(self, reason: str):
        self.reason = reason


@dataclass
class Family:
    read: Callable[[], dict[str, Any]]
    fields: tuple[str, ...]
    slow: bool = False
    every: int = 1  # read on every ``every``-th tick (slow families: the sampler's slow_every)


class Sampler:
    """Base class: subclasses register families with ``add_family`` (or one-field families
    with ``add_field``); ``slow=True`` families are read on every ``slow_every``-th tick."""

    name = "sampler"

    def __init__(self, hz: float = 10.0, slow_every: int = SLOW_EVERY, tick_budget_ms: float | None = TICK_BUDGET_MS):
        if not (MIN_HZ <= hz <= MAX_HZ):
            raise ValueError(f"sampling rate {hz} Hz outside {MIN_HZ}..{MAX_HZ} Hz")
        if slow_every < 1:
            raise ValueError(f"slow_every must be >= 1 (got {slow_every})")
        self.hz = float(hz)
        self.slow_every = int(slow_every)
        self.tick_budget_ms = tick_budget_ms  # None: never read a family less often than registered
        self.demoted: dict[str, str] = {}
        self._budget_checked = False
        self.families: dict[str, Family] = {}
        self.errors: dict[str, str] = {}
        self.samples: list[dict[str, Any]] = []
        self.read_seconds: list[float] = []
        self.family_seconds: dict[str, list[float]] = {}
        self.missed_deadlines = 0
        self.ticks = 0
        self._dead: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.started_at: float | None = None
        self.stopped_at: float | None = None

    # -- registering -----------------------------------------------------------------------
    def add_family(self, name: str, read: Callable[[], dict[str, Any]], fields: tuple[str, ...] | list[str],
                   slow: bool = False) -> None:
        self.families[name] = Family(read, tuple(fields), slow, self.slow_every if slow else 1)
        self.family_seconds.setdefault(name, [])

    def add_field(self, name: str, reader: Callable[[], Any], slow: bool = False) -> None:
        """A family of one field, named as the field."""
        self.add_family(name, lambda: {name: reader()}, (name,), slow)

    @property
    def fields(self) -> list[str]:
        return [f for fam in self.families.values() for f in fam.fields]

    # -- reading -------------------------------------------------------------------------
    def _fail(self, field: str, reason: str) -> None:
        self.errors.setdefault(field, reason)

    def _read_family(self, name: str, fam: Family) -> dict[str, Any]:
        if name in self._dead:
            return {f: None for f in fam.fields}
        try:
            got = fam.read()
        except Exception as exc:  # a failing sensor is recorded once, the rest go on
            self._dead.add(name)
            for f in fam.fields:
                self._fail(f, f"{type(exc).__name__}: {exc}")
            return {f: None for f in fam.fields}
        out: dict[str, Any] = {}
        for f in fam.fields:
            v = got.get(f)
            if isinstance(v, Missing):
                self._fail(f, v.reason)
                v = None
            elif f in self.errors:
                v = None
            out[f] = v
        if all(f in self.errors for f in fam.fields):
            self._dead.add(name)
        return out

    def sample_once(self) -> dict[str, Any]:
        t0 = clock()
        sample: dict[str, Any] = {}
        times: dict[str, float] = {}
        for name, fam in self.families.items():
            if self.ticks % fam.every:
                continue
            f0 = clock()
            sample.update(self._read_family(name, fam))
            times[name] = clock() - f0
        self.derive(sample)
        t1 = clock()
        sample["t"] = (t0 + t1) / 2
        with self._lock:
            self.ticks += 1
            self.samples.append(sample)
            self.read_seconds.append(t1 - t0)
            for name, dt in times.items():
                self.family_seconds[name].append(dt)
        if self.tick_budget_ms is not None:
            self._keep_budget()
        return sample

    def _per_tick_ms(self) -> tuple[dict[str, float], bool]:
        """The read time per tick of each family read ``BUDGET_AFTER_READS`` times (its mean
        read, the first and possibly cold one left out, over its read interval), and whether
        every family has been."""
        out, complete = {}, True
        for name, fam in self.families.items():
            ts = self.family_seconds[name]
            if name in self._dead:
                continue
            if len(ts) < BUDGET_AFTER_READS:  # not judged on its first, possibly cold, read
                complete = False
                continue
            out[name] = 1e3 * sum(ts[1:]) / (len(ts) - 1) / fam.every
        return out, complete

    def _keep_budget(self) -> None:
        """Read the costliest families less often until the tick's read time fits the budget
        (checked after every tick until every family has its reads, then no more)."""
        if self._budget_checked:
            return
        with self._lock:
            cost, complete = self._per_tick_ms()
        self._budget_checked = complete
        while sum(cost.values()) > self.tick_budget_ms:
            movable = [n for n in cost if self.families[n].every * 10 <= MAX_EVERY]
            if not movable:
                break
            name = max(movable, key=cost.get)
            fam = self.families[name]
            per_read = cost[name] * fam.every
            fam.every *= 10
            fam.slow = True
            cost[name] = per_read / fam.every
            self.demoted[name] = (f"{per_read:.3f} ms a read: read on every {fam.every}th tick to keep the "
                                  f"sampler's mean tick under {self.tick_budget_ms} ms")

    def derive(self, sample: dict[str, Any]) -> None:
        """Fields computed from the others (subclasses); costs no sensor read."""

    # -- thread ----------------------------------------------------------------------------
    def _loop(self) -> None:
        period = 1.0 / self.hz
        deadline = clock()
        while not self._stop.is_set():
            self.sample_once()
            deadline += period
            now = clock()
            if now > deadline:  # fell behind: skip the missed ticks, never burst
                missed = int((now - deadline) // period) + 1
                self.missed_deadlines += missed
                deadline += missed * period
            self._stop.wait(max(0.0, deadline - clock()))

    def start(self) -> "Sampler":
        if self._thread is not None:
            raise RuntimeError(f"{self.name} sampler already started")
        self._stop.clear()
        self.started_at = clock()
        self._thread = threading.Thread(target=self._loop, name=f"{self.name}-sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.stopped_at = clock()

    def __enter__(self) -> "Sampler":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- results -----------------------------------------------------------------------------
    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.samples)

    def family_overhead(self) -> dict[str, dict[str, Any]]:
        """Read time per family: {name: {fields, slow, reads, mean_ms, max_ms}}."""
        with self._lock:
            times = {k: list(v) for k, v in self.family_seconds.items()}
        out = {}
        for name, fam in self.families.items():
            ts = times.get(name, [])
            out[name] = {"fields": list(fam.fields), "slow": fam.slow, "every": fam.every,
                         "demoted": self.demoted.get(name), "reads": len(ts),
                         "mean_ms": 1e3 * sum(ts) / len(ts) if ts else None,
                         "max_ms": 1e3 * max(ts) if ts else None}
        return out

    def overhead(self) -> dict[str, Any]:
        """Tick read time (mean/max over ticks, slow ticks included), the share of wall time
        the thread spent reading, and the read time of each family."""
        with self._lock:
            reads = list(self.read_seconds)
        span = (self.stopped_at or clock()) - (self.started_at or clock())
        busy = sum(reads)
        with self._lock:
            per_tick, _ = self._per_tick_ms()
        return {
            "samples": len(reads),
            "mean_read_ms": 1e3 * busy / len(reads) if reads else None,
            # the mean tick once every family reads at its interval: each family's mean read, its
            # first (possibly cold) one left out, over its interval; a short run's mean_read_ms also
            # holds the reads that set those intervals
            "steady_tick_ms": sum(per_tick.values()) if per_tick else None,
            "max_read_ms": 1e3 * max(reads) if reads else None,
            "busy_fraction": busy / span if span > 0 and self.started_at is not None else None,
            "missed_deadlines": self.missed_deadlines,
            "slow_every": self.slow_every,
            "tick_budget_ms": self.tick_budget_ms,
            "families": self.family_overhead(),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "sampler": self.name,
            "hz": self.hz,
            "fields": self.fields,
            "slow_fields": [f for fam in self.families.values() if fam.slow for f in fam.fields],
            "errors": dict(self.errors),
            "overhead": self.overhead(),
            "samples": self.snapshot(),
        }
