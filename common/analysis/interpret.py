"""Reading a pipeline record: bottleneck and Amdahl bounds from measured numbers (pure; no torch)."""

from __future__ import annotations

from typing import Any

DATA_STALL_BOTTLENECK = 0.2  # a data stall above this share of the model's ceiling names data loading the bottleneck


def interpret(c: dict[str, Any]) -> dict[str, Any]:
    """Bottleneck and Amdahl bounds of one configuration's record, from measured numbers only.

    Synchronizing every stage slows the model, which lets DataLoader workers catch up, so the
    staged breakdown under-states a data stall; the unsynchronized throughputs do not. The
    bound "if data cost nothing" is therefore the measured model-only ceiling over the
    end-to-end rate; "if the model cost nothing" is the staged step over its data stages."""
    e2e = c["end_to_end_images_per_s"]["median"]
    ceil = c["model_only_images_per_s"]["median"]
    stall = max(0.0, 1.0 - e2e / ceil) if ceil else 0.0
    if stall >= DATA_STALL_BOTTLENECK:
        bottleneck = "data loading"
        why = f"end to end reaches {100 * e2e / ceil:.0f}% of the model-only ceiling"
    else:
        bottleneck = c["bottleneck"]
        why = f"largest stage: {100 * c['share'].get(bottleneck, 0):.0f}% of the step"
    return {"bottleneck": bottleneck, "why": why, "data_stall_fraction": stall,
            "speedup_if_data_free": ceil / e2e if e2e else None,
            "speedup_if_model_free": c.get("amdahl_if_model_free")}
