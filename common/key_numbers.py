"""The report's key numbers: each section's ``key_numbers(record) -> [(label, text)]`` (in
``common/sections/<name>/key_numbers.py``, found by the convention of ``common.sections``) reads one
record (status ok) and gives (label, text) rows; this module gathers them, headline sections first,
and holds what they share. Pure; no torch."""

from __future__ import annotations

from typing import Any

from common.records import Record


def fmt_value(v: Any, fmt: str = "{:.3g}", none: str = "n/a") -> str:
    """``fmt.format(v)``, or ``none`` where ``v`` is None."""
    return none if v is None else fmt.format(v)


def key_numbers(records: dict[str, Record]) -> list[tuple[str, str]]:
    """Every section's key numbers, headline sections first (common.layout.PRESENTATION_ORDER)."""
    from common.layout import presented

    rows: list[tuple[str, str]] = []
    for sec in presented():
        rec = records.get(sec.name)
        if rec is not None and rec.status == "ok" and (part := sec.entry("key_numbers")):
            rows += part(rec)
    return rows
