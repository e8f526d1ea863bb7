"""Key numbers of the scaling section for the report."""

from __future__ import annotations

from common.key_numbers import fmt_value
from common.records import Record


def key_numbers(rec: Record | None) -> list[tuple[str, str]]:
    """Key numbers of the scaling section: the widest count against the first, or why there is no curve."""
    if rec is None or rec.status != "ok":
        return []
    d = rec.data
    if not d.get("available"):
        return [("Data-parallel scaling", d.get("reason") or "not measured")]
    a, b = d["rows"][0], d["rows"][-1]
    u = d["unit"]

    def tta(r):
        return f"{r['time_to_target_s']:.1f} s" if r["time_to_target_s"] is not None else "not reached"

    strong = b.get("strong_efficiency")
    return [(f"Data-parallel scaling, {b['workers']} {u}s", f"{b['images_per_s']['median']:.0f} img/s; weak-scaling "
             f"efficiency {b['weak_efficiency']['value']:.3f} "
             f"({b['weak_efficiency'].get('interval_kind') or 'window range'} "
             f"{b['weak_efficiency']['ci95'][0]:.3f}-"
             f"{b['weak_efficiency']['ci95'][1]:.3f})" + (f", strong {strong['value']:.3f}" if strong else "")
             + f"; time to target {tta(b)} vs {tta(a)} on {a['workers']}, test accuracy "
             f"{100 * b['test_accuracy']:.2f}%; all-reduce in flight "
             f"{fmt_value(b['comm_in_flight_share'], '{:.1%}')} of the step, exposed "
             f"{fmt_value(b['comm_exposed_share'], '{:.1%}')}")]
