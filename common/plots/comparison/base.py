"""What every comparison figure shares: colours, wrapped text, the header naming both machines, the forest
plot of speedups with their window ranges, plain-number log axes."""

from __future__ import annotations

import math
import textwrap

import numpy as np
from matplotlib.lines import Line2D

from common.comparison import BEST_VS_BEST, LIKE_FOR_LIKE
from common.comparison.text import fmt_x, machine
from common.plots.common import DEVICE_COLORS, not_available

GPU_C, CPU_C = DEVICE_COLORS["cuda"], DEVICE_COLORS["cpu"]


HOST_C = "#9ecae1"  # the GPU run's host CPU


KIND_COLORS = {LIKE_FOR_LIKE: "#6a3d9a", BEST_VS_BEST: "#e6550d"}


GROUP_TITLES = {"training": "training", "pipeline": "pipeline", "pipeline_stage": "pipeline stages",
                "inference": "inference", "augmentation": "augmentation (batched)",
                "augmentation_host_cpu": "augmentation, MONAI per sample (host CPUs)", "volume3d": "3D volume"}


NOTE_BOX = {"facecolor": "white", "alpha": 0.9, "edgecolor": "#ccc", "boxstyle": "round,pad=0.4"}


def wrap(text: str, width: int = 90) -> str:
    return "\n".join(textwrap.wrap(str(text), width))


def header(fig, record, title: str, y: float | None = None) -> None:
    """Title with both machines and dates (the comparison's version of plots.common.header)."""
    env = record.environment or {}
    g = machine(env.get("gpu_run") or {}, "cuda")
    c = machine(env.get("cpu_run") or {}, "cpu")
    flags = []
    if g["quick"] or c["quick"]:
        flags.append("quick mode: " + ", ".join(d for d, m in (("GPU run", g), ("CPU run", c)) if m["quick"]))
    if g["synthetic"] or c["synthetic"]:
        flags.append("SYNTHETIC DATA")
    sub = (f"GPU run: {g['label']}, {(g['time_utc'] or '')[:16]}\nCPU run: {c['label']}, "
           f"{(c['time_utc'] or '')[:16]}" + (" | " + " | ".join(flags) if flags else ""))
    fig.suptitle(f"{title}\n{sub}", fontsize=11, y=0.995 if y is None else y, va="top")


def top(fig, extra_in: float = 0.0) -> float:
    """The top of the axes area that leaves room for the three-line header (and ``extra_in`` inches)."""
    return 1 - (1.05 + extra_in) / fig.get_figheight()


def _short(metric: str, width: int = 58) -> str:
    return metric if len(metric) <= width else metric[: width - 1] + "…"


def _interval_label(e: dict) -> str:
    lo, hi = e["ci95"]
    return f"{fmt_x(e['speedup'])}x ({fmt_x(lo)}-{fmt_x(hi)})"


def forest(ax, entries: list[dict], title: str, label_width: int = 58, show_kind: bool = True,
           reason: str | None = None) -> None:
    """Speedups with their window ranges on a log axis; > 1: the GPU is better."""
    if not entries:
        not_available(ax, reason or "nothing was measured the same way in both runs")
        ax.set_title(title)
        return
    y = np.arange(len(entries))[::-1]
    vals = np.array([e["speedup"] for e in entries])
    lo = np.array([e["ci95"][0] for e in entries])
    hi = np.array([e["ci95"][1] for e in entries])
    colors = [KIND_COLORS.get(e["kind"], "#555") for e in entries]
    ax.errorbar(vals, y, xerr=[np.maximum(vals - lo, 0), np.maximum(hi - vals, 0)], fmt="none", ecolor="#444",
                capsize=2, lw=1)
    ax.scatter(vals, y, c=colors, zorder=3, s=28)
    ax.axvline(1.0, color="k", lw=0.8)
    ax.set_xscale("log")
    ax.set_yticks(y, [_short(e.get("short") or e["metric"], label_width) for e in entries], fontsize=7.5)
    ax.set_ylim(-1.7 if show_kind else -0.6, len(entries) - 0.4)
    xmax = max(hi.max(), vals.max(), 1.0)
    xmin = min(lo.min(), vals.min(), 1.0)
    ax.set_xlim(xmin / 2.5, xmax * 6)
    for yi, e, h in zip(y, entries, hi):
        ax.text(max(h, e["speedup"]) * 1.15, yi, _interval_label(e), va="center", fontsize=7)
    ax.set_xlabel("speedup of the GPU over the CPU (x, log scale; > 1: GPU better; "
                  "bars: window range of the timed windows)")
    ax.set_title(title)
    if show_kind:
        ax.legend(handles=[Line2D([], [], marker="o", ls="", color=c, label=k) for k, c in KIND_COLORS.items()],
                  fontsize=7.5, loc="lower right", ncol=2, framealpha=0.95)


def plain_log(ax, axis: str = "y") -> None:
    """Log axis with plain numbers (0.1, 1, 10, 100) instead of powers of ten."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    a = ax.yaxis if axis == "y" else ax.xaxis
    a.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    lo, hi = ax.get_ylim() if axis == "y" else ax.get_xlim()
    if lo > 0 and hi / lo < 30:  # less than ~1.5 decades: label the 2s and 5s too

        def minor(v, _):
            m = v / 10 ** math.floor(math.log10(v)) if v > 0 else 0
            return f"{v:g}" if round(m) in (2, 5) and abs(m - round(m)) < 1e-6 else ""

        a.set_minor_formatter(FuncFormatter(minor))
    else:
        a.set_minor_formatter(NullFormatter())


def _bar_err(stat: dict | None) -> tuple[float, list[float]]:
    if not stat or stat.get("median") is None:
        return float("nan"), [0.0, 0.0]
    m = stat["median"]
    lo, hi = stat["ci95"]
    return m, [max(0.0, m - lo), max(0.0, hi - m)]
