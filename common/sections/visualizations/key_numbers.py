"""Key numbers of the 3D volume section for the report."""

from __future__ import annotations

from common.records import Record


def key_numbers(v: Record) -> list[tuple[str, str]]:
    if not v.data.get("training"):
        return []
    dice = ", ".join(f"{k} {x:.3f}" for k, x in (v.data.get("dice") or {}).items() if x is not None)
    sw = v.data["sliding_window"]
    return [("3D segmentation", f"Dice {dice}; sliding-window inference {sw['seconds']:.2f} s for "
                                f"{sw['voxels']} voxels")]
