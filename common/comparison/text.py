"""Words and numbers of the comparison: speedups as phrases, number formats, the settings two
configurations differ in, and a run's machine in one line. Pure; no torch, no numpy."""

from __future__ import annotations

import math
from typing import Any


def fmt_x(v: float | None) -> str:
    if v is None or not math.isfinite(v):
        return "n/a"
    if v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}" if v < 20 else f"{v:.0f}"
    if v >= 1:
        return f"{v:.2f}" if v < 2 else f"{v:.1f}"
    return f"{v:.2f}"


def fmt_num(v: float | None, unit: str = "") -> str:
    if v is None or not math.isfinite(v):
        return "n/a"
    a = abs(v)
    s = (f"{v / 1e6:.2f}M" if a >= 1e6 else f"{v / 1e3:.1f}k" if a >= 1e4 else f"{v:.0f}" if a >= 100
         else f"{v:.3g}")
    return f"{s} {unit}".strip()


def speedup_phrase(e: dict[str, Any], what: str = "faster") -> str:
    """'37x faster on the GPU (35-39x)' / '2.1x slower on the GPU (...)' / 'no clear difference (...)'."""
    s, (lo, hi) = e["speedup"], e["ci95"]
    if lo <= 1.0 <= hi:
        return f"no clear difference between the devices ({fmt_x(s)}x, window range {fmt_x(lo)}-{fmt_x(hi)}x)"
    if s >= 1:
        return f"{fmt_x(s)}x {what} on the GPU ({fmt_x(lo)}-{fmt_x(hi)}x)"
    slower = {"faster": "slower", "higher": "lower", "lower": "higher"}.get(what, "worse")
    return f"{fmt_x(1 / s)}x {slower} on the GPU ({fmt_x(1 / hi)}-{fmt_x(1 / lo)}x)"


def levers_diff(a: dict | None, b: dict | None) -> dict[str, dict[str, Any]]:
    if not a or not b:
        return {}
    return {k: {"gpu": a.get(k), "cpu": b.get(k)} for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}


def diff_text(diff: dict[str, dict[str, Any]]) -> str:
    return ", ".join(f"{k} {v['gpu']} vs {v['cpu']}" for k, v in diff.items())


def machine(env: dict[str, Any], device: str) -> dict[str, Any]:
    gpu = env.get("gpu") or {}
    devs = gpu.get("devices") or []
    git = env.get("git") or {}
    ds = env.get("dataset") or {}
    cfg = env.get("config") or {}
    out = {
        "device": device, "hostname": env.get("hostname"), "cpu_model": env.get("cpu_model"),
        "physical_cores": env.get("physical_cores"), "threads_used": env.get("threads_used"),
        "gpu_name": devs[0]["name"] if devs else None, "gpu_count": gpu.get("count"),
        "gpu_memory_mib": devs[0].get("memory_mib") if devs else None, "driver": gpu.get("driver"),
        "power_limit_w": gpu.get("power_limit_w"), "time_utc": env.get("time_utc"), "torch": env.get("torch"),
        "monai": env.get("monai"), "git_commit": git.get("commit"), "git_dirty": git.get("dirty"),
        "quick": bool(cfg.get("quick")), "batch_size": cfg.get("batch_size"), "synthetic": bool(ds.get("synthetic")),
        "dataset_source": ds.get("source"), "dataset_images": ds.get("total"),
    }
    if device == "cuda":
        out["label"] = f"{out['gpu_name'] or 'GPU'} (host {out['hostname']}, {out['cpu_model']})"
        out["short"] = out["gpu_name"] or "GPU"
    else:
        out["label"] = f"{out['cpu_model']}, {out['threads_used']} threads (host {out['hostname']})"
        out["short"] = f"{out['cpu_model']}, {out['threads_used']} threads"
    return out
