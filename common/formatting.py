"""Text for numbers that may be missing: a missing value (None, NaN, infinite) is printed as
"n/a (<reason>)", never as 0, nan or a blank. Figures use ``common.plots.common.missing_bar``."""

from __future__ import annotations

import math
from typing import Any

NO_REASON = "not recorded"


def is_missing(v: Any) -> bool:
    """None, or a float that is NaN or infinite."""
    if v is None:
        return True
    try:
        return not math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


def na(reason: str | None = None) -> str:
    return f"n/a ({reason or NO_REASON})"


def fmt_or_na(v: Any, fmt: str = "{:.3g}", reason: str | None = None) -> str:
    """``fmt.format(v)``, or "n/a (<reason>)" where ``v`` is missing."""
    return na(reason) if is_missing(v) else fmt.format(v)
