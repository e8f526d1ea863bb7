"""Measurement core: timing windows, statistics, samplers, energy counters, environment."""

from common.measure.stats import Ratio, Summary, ratio
from common.measure.timing import Span, Timer

__all__ = ["Ratio", "Summary", "ratio", "Span", "Timer"]
