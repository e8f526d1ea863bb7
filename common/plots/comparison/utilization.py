"""utilization_comparison/: timelines, utilization by stage and by ladder rung."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from common.atomic import save_figure
from common.plots.common import not_available
from common.plots.comparison.base import CPU_C, GPU_C, HOST_C, header, top, wrap


def _timeline(ax, run: dict, title: str, gpu: bool) -> None:
    if not run.get("available"):
        not_available(ax, run.get("reason"))
        ax.set_title(title)
        return
    tl = run["timeline"]
    cpu = tl.get("cpu") or {}
    handles = ax.plot(cpu.get("t_s", []), [np.nan if v is None else v for v in cpu.get("cpu_total_pct", [])],
                      color=HOST_C if gpu else CPU_C, lw=1.2,
                      label="host CPU busy (%, all cores)" if gpu else "CPU busy (%, all cores)")
    g = tl.get("gpu")
    if gpu and g:
        handles += ax.plot(g["t_s"], [np.nan if v is None else v for v in g["gpu_util_pct"]], color=GPU_C, lw=1.2,
                           label="GPU utilization (%)")
        if any(v is not None for v in g.get("power_w", [])):
            ax2 = ax.twinx()
            handles += ax2.plot(g["t_s"], [np.nan if v is None else v for v in g["power_w"]], color="#d62728",
                                lw=0.8, alpha=0.6, label="GPU board power (W, right axis)")
            ax2.set_ylabel("GPU board power (W)", color="#d62728")
            ax2.set_ylim(bottom=0)
            ax2.grid(False)
    elif gpu:
        ax.text(0.5, 0.5, "no GPU samples in this record", transform=ax.transAxes, ha="center", color="#888")
    for i, s in enumerate(tl.get("sections", [])):
        ax.axvspan(s["start_s"], s["end_s"], color="#000", alpha=0.04 + 0.04 * (i % 2))
        ax.text((s["start_s"] + s["end_s"]) / 2, 102 + 9 * (i % 2), s["name"].replace("_", " "), ha="center",
                va="bottom", fontsize=7)
    ax.set_ylim(0, 125)
    ax.set_ylabel("busy (%)")
    ax.set_xlabel("seconds since the run's samplers started (shaded: the analysis sections)")
    ax.set_title(title, pad=4)
    ax.legend(handles=handles, fontsize=7.5, loc="upper left", bbox_to_anchor=(1.04, 1.0))


def _grouped(ax, names: list[str], series: list[tuple[str, list, str]], ylabel: str, title: str,
             missing_note: str | None = None) -> None:
    if not names:
        not_available(ax, missing_note or "nothing measured in both runs")
        ax.set_title(title)
        return
    x = np.arange(len(names))
    w = 0.8 / max(1, len(series))
    for i, (label, vals, color) in enumerate(series):
        xs = x + (i - (len(series) - 1) / 2) * w
        ax.bar(xs, [np.nan if a is None else a for a in vals], w, color=color, label=label)
        for xi, a in zip(xs, vals):
            ax.text(xi, (a or 0) + 1, "n/a" if a is None else f"{a:.0f}", ha="center", fontsize=6.5,
                    color="#888" if a is None else "k")
    ax.set_xticks(x, [wrap(n, 16) for n in names], fontsize=7)
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, 135)
    ax.set_yticks(range(0, 101, 20))
    ax.set_title(title)
    ax.legend(fontsize=7, loc="upper center", ncol=len(series), framealpha=0.95)


def utilization_figure(rec, path: Path) -> Path:
    d = rec.data
    fig = plt.figure(figsize=(18, 14))
    gs = fig.add_gridspec(3, 2, hspace=0.5, wspace=0.18, top=top(fig, 0.2), bottom=0.11, left=0.05, right=0.86)
    _timeline(fig.add_subplot(gs[0, :]), d["gpu_run"], "GPU run: GPU utilization, board power and host CPU over the "
              "whole run", True)
    _timeline(fig.add_subplot(gs[1, :]), d["cpu_run"], "CPU run: CPU busy over the whole run", False)
    gps = (d["gpu_run"].get("per_stage") or {})
    cps = (d["cpu_run"].get("per_stage") or {})
    stages = list(dict.fromkeys(list(gps.get("gpu_util_pct", {})) + list(gps.get("cpu_total_pct", {}))
                                + list(cps.get("cpu_total_pct", {}))))

    def m(dct, k):
        return (dct.get(k) or {}).get("mean")

    series = [("GPU run: GPU utilization", GPU_C), ("GPU run: host CPU busy", HOST_C), ("CPU run: CPU busy", CPU_C)]
    _grouped(fig.add_subplot(gs[2, 0]), stages,
             [(series[0][0], [m(gps.get("gpu_util_pct", {}), s) for s in stages], GPU_C),
              (series[1][0], [m(gps.get("cpu_total_pct", {}), s) for s in stages], HOST_C),
              (series[2][0], [m(cps.get("cpu_total_pct", {}), s) for s in stages], CPU_C)],
             "mean of the samples inside each stage (%)", "Utilization by pipeline stage")
    rungs = d.get("rungs") or []
    _grouped(fig.add_subplot(gs[2, 1]), [r["name"] for r in rungs],
             [(series[0][0], [r["gpu_util_pct"] for r in rungs], GPU_C),
              (series[1][0], [r["gpu_run_cpu_util_pct"] for r in rungs], HOST_C),
              (series[2][0], [r["cpu_run_cpu_util_pct"] for r in rungs], CPU_C)],
             "mean over the timed windows (%)", "Utilization by ladder rung (n/a: rung not run on that device)")
    fig.text(0.5, 0.012, wrap(" ".join(d.get("verdicts", [])), 210), ha="center", fontsize=8.5)
    header(fig, rec, "GPU vs CPU utilization: how busy each device was, over time, by stage and by configuration")
    return save_figure(fig, path)
