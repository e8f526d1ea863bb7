"""Whether Triton can run the fused kernels here, and whether it runs them in its interpreter.
Kept apart from fused_dense and fused_kernels so that neither imports the other to ask."""

from __future__ import annotations

import os


def triton_available() -> tuple[bool, str]:
    """(True, "") where the fused kernels can run, else (False, why)."""
    try:
        import triton  # noqa: F401
    except Exception as e:  # noqa: BLE001 - any import failure means no Triton here
        return False, f"triton is not importable ({type(e).__name__}: {e})"
    return True, ""


def interpreting() -> bool:
    """Whether Triton runs its kernels in its interpreter (TRITON_INTERPRET, the CPU tests)."""
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")
