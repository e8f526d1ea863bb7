"""Named, nestable timing windows on one monotonic clock.

``with timer.window("forward"):`` records a Span. On CUDA the window synchronizes the device
at both edges, so the span covers the device work launched inside it (and, optionally,
records CUDA events to cross-check). Spans opened inside ``with timer.warmup():`` are
marked warm-up and excluded from summaries. The clock is ``time.perf_counter``
(CLOCK_MONOTONIC on Linux), the same clock the samplers stamp their samples with, so stage
spans line up with utilization samples.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass

from common.measure.stats import Summary

clock = time.perf_counter


@dataclass
class Span:
    name: str
    start: float  # seconds on the perf_counter clock
    end: float
    depth: int
    tag: str = ""  # e.g. the section or configuration that opened it
    warmup: bool = False
    step: int | None = None
    cuda_ms: float | None = None  # CUDA-event elapsed time, where events were recorded

    @property
    def duration(self) -> float:
        return self.end - self.start

    def to_dict(self) -> dict:
        d = asdict(self)
        d["duration_s"] = self.duration
        return d


def cuda_sync(device) -> None:
    import torch

    if torch.cuda.is_available() and str(device).startswith("cuda"):
        torch.cuda.synchronize(device)


class Timer:
    """Collects Spans. ``device`` decides whether window edges synchronize CUDA;
    ``sync=False`` turns that off (for throughput loops that sync only at their ends);
    ``sink`` is an optional run-wide list that receives every span too (the timeline)."""

    def __init__(self, device: str = "cpu", sync: bool = True, tag: str = "", sink: list | None = None,
                 cuda_events: bool = False):
        self.device = str(device)
        self.is_cuda = self.device.startswith("cuda")
        self.sync = sync and self.is_cuda
        self.cuda_events = cuda_events and self.is_cuda
        self.tag = tag
        self.sink = sink
        self.spans: list[Span] = []
        self._depth = 0
        self._warmup = False

    @contextlib.contextmanager
    def warmup(self) -> Iterator[None]:
        previous, self._warmup = self._warmup, True
        try:
            yield
        finally:
            self._warmup = previous

    @contextlib.contextmanager
    def window(self, name: str, step: int | None = None) -> Iterator[None]:
        start_ev = end_ev = None
        if self.sync:
            cuda_sync(self.device)
        if self.cuda_events:
            import torch

            start_ev = torch.cuda.Event(enable_timing=True)
            end_ev = torch.cuda.Event(enable_timing=True)
            start_ev.record()
        depth = self._depth
        self._depth += 1
        t0 = clock()
        try:
            yield
        finally:
            if end_ev is not None:
                end_ev.record()
            if self.sync:
                cuda_sync(self.device)
            t1 = clock()
            self._depth -= 1
            span = Span(name, t0, t1, depth, self.tag, self._warmup, step)
            if end_ev is not None:
                end_ev.synchronize()
                span.cuda_ms = float(start_ev.elapsed_time(end_ev))
            self.spans.append(span)
            if self.sink is not None:
                self.sink.append(span)

    def durations(self, name: str, include_warmup: bool = False) -> list[float]:
        return [s.duration for s in self.spans if s.name == name and (include_warmup or not s.warmup)]

    def summary(self, name: str, unit: str = "s") -> Summary:
        values = self.durations(name)
        if not values:
            raise KeyError(f"no measured span named {name!r}")
        return Summary.from_values(values, unit)

    def names(self) -> list[str]:
        seen: dict[str, None] = {}
        for s in self.spans:
            seen.setdefault(s.name, None)
        return list(seen)

    def per_step(self, names: list[str]) -> dict[int, dict[str, float]]:
        """Measured (non-warm-up) span durations grouped by step: {step: {name: seconds}}."""
        out: dict[int, dict[str, float]] = {}
        for s in self.spans:
            if s.warmup or s.step is None or s.name not in names:
                continue
            out.setdefault(s.step, {})
            out[s.step][s.name] = out[s.step].get(s.name, 0.0) + s.duration
        return out
