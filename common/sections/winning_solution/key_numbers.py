"""Key numbers of the winning solution for the report."""

from __future__ import annotations

from common.key_numbers import fmt_value
from common.ladder_text import headline_rows
from common.records import Record


def key_numbers(w: Record) -> list[tuple[str, str]]:
    """The winning solution's rows: the same sentences as the README's headline block
    (common/ladder_text.py), each speed claim beside its time to target."""
    if "time_to_target" not in w.data["rungs"][0]:  # a throughput-ladder record from before issue 15
        return [("Winning solution", "this record predates time to target (issue 15): re-run the winning_solution "
                 "section (--sections winning_solution) for cold and warm time to target on every seed")]
    rows = [(f"Winning solution: {label.lower()}", text.lstrip("- "))
            for label, text in headline_rows(w.data, w.device)]
    s = w.data["summary"]
    rows.append(("Winning solution: rule", f"{s['winner_rule']}; gate: test accuracy >= "
                 + (fmt_value(s.get("accuracy_gate"), "{:.2%}") if s.get("accuracy_gate") is not None else "n/a")
                 + " on every seed"))
    return rows
