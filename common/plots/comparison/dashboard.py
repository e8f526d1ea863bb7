"""performance_comparison/: the dashboard (throughputs, latency, stages, every speedup)."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Patch

from common.atomic import save_figure
from common.comparison import BEST_VS_BEST, LIKE_FOR_LIKE
from common.comparison.speedups import RECIPE_ID, WINNER_ID
from common.comparison.text import fmt_num
from common.plots.common import not_available
from common.plots.comparison.base import (
    CPU_C,
    GPU_C,
    KIND_COLORS,
    _bar_err,
    _interval_label,
    forest,
    header,
    plain_log,
    top,
    wrap,
)

DASH_IDS = {"training: tutorial recipe": RECIPE_ID,
            "training: device-resident": "pipeline.device_resident.end_to_end",
            "training: winner": WINNER_ID,
            "inference: best batch": "inference.throughput.best_batch",
            "augmentation chain: best way": "augmentation.chain.best"}


def _throughput_panel(ax, d: dict) -> None:
    ov = d.get("training_overview") or {}
    groups = list(dict.fromkeys([r["group"] for r in ov.get("gpu", [])] + [r["group"] for r in ov.get("cpu", [])]))
    if not groups:
        not_available(ax, "no throughput in the records")
        return
    by = {e["id"]: e for e in d["speedups"]}
    x = np.arange(len(groups))
    for off, dev, color in ((-0.2, "gpu", GPU_C), (0.2, "cpu", CPU_C)):
        rows = {r["group"]: r for r in ov.get(dev, [])}
        meds, errs = zip(*[_bar_err(rows.get(gname)) for gname in groups])
        ax.bar(x + off, meds, 0.4, yerr=np.array(errs).T, capsize=3, color=color, label=f"{dev.upper()} run")
        for xi, m in zip(x + off, meds):
            if math.isfinite(m):
                ax.text(xi, m * 1.12, fmt_num(m), ha="center", va="bottom", fontsize=7.5)
    ax.set_yscale("log")
    lo, hi = ax.get_ylim()
    ax.set_ylim(lo, hi * 60)
    plain_log(ax)
    for xi, gname in zip(x, groups):
        e = by.get(DASH_IDS.get(gname, ""))
        if e:
            ax.text(xi, hi * 4, f"GPU {_interval_label(e)}\n{e['kind']}", ha="center", fontsize=7.5,
                    color=KIND_COLORS.get(e["kind"]), fontweight="bold")
    ax.set_xticks(x, [g.replace(": ", ":\n") for g in groups], fontsize=8)
    ax.set_ylabel("images/s (median, log scale; bars: window range)")
    ax.set_title("Throughput (text: the GPU's speedup, window range, kind)")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))


def _latency_panel(ax, d: dict) -> None:
    lat = d.get("latency") or {}
    cols = [(dev, prec) for dev in ("gpu", "cpu") for prec in (lat.get(dev) or {})]
    if not cols:
        not_available(ax, "no batch-1 latency in the records")
        return
    x = np.arange(len(cols))
    for j, (pct, alpha) in enumerate((("median_ms", 1.0), ("p95_ms", 0.6), ("p99_ms", 0.35))):
        vals = [lat[dev][prec].get(pct) or float("nan") for dev, prec in cols]
        colors = [GPU_C if dev == "gpu" else CPU_C for dev, _ in cols]
        err = None
        if pct == "median_ms":
            err = np.array([[max(0.0, v - lat[dev][prec]["median_ci95"][0]),
                             max(0.0, lat[dev][prec]["median_ci95"][1] - v)] for v, (dev, prec) in zip(vals, cols)]).T
        xs = x + (j - 1) * 0.27
        ax.bar(xs, vals, 0.27, color=colors, alpha=alpha, yerr=err, capsize=2)
        tops = [max(v, lat[dev][prec]["median_ci95"][1]) if pct == "median_ms" else v
                for v, (dev, prec) in zip(vals, cols)]
        for xi, v, t in zip(xs, vals, tops):
            if math.isfinite(v):
                ax.text(xi, t * 1.06, f"{v:.3g}", ha="center", va="bottom", fontsize=7)
    ax.set_yscale("log")
    lo, hi = ax.get_ylim()
    ax.set_ylim(lo, hi * 2)
    plain_log(ax)
    ax.set_xticks(x, [f"{dev.upper()} run\n{prec}" for dev, prec in cols])
    ax.set_ylabel("batch-1 inference latency (ms, log scale)")
    ax.set_title("Inference latency, batch 1: median (with its window range), p95, p99")
    ax.legend(handles=[Patch(color="#777", alpha=a, label=p) for p, a in (("median", 1), ("p95", .6), ("p99", .35))],
              fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))


def _stage_panel(ax, entries: list[dict], title: str) -> None:
    """Per-stage time per image, GPU vs CPU, from the stage speedup entries."""
    if not entries:
        not_available(ax, "no stage timed in both runs")
        return
    labels = [e.get("short") or e["metric"] for e in entries]
    y = np.arange(len(entries))[::-1]
    for off, dev, color in ((0.2, "gpu", GPU_C), (-0.2, "cpu", CPU_C)):
        meds = np.array([e[dev]["median"] for e in entries])
        lo = np.array([e[dev]["ci95"][0] for e in entries])
        hi = np.array([e[dev]["ci95"][1] for e in entries])
        ax.barh(y + off, meds, 0.4, xerr=[np.maximum(meds - lo, 0), np.maximum(hi - meds, 0)], color=color,
                capsize=2, label=f"{dev.upper()} run")
    for yi, e in zip(y, entries):
        right = max(e["gpu"]["ci95"][1], e["cpu"]["ci95"][1])
        ax.text(right * 1.4, yi, _interval_label(e), va="center", fontsize=7,
                color="#1a7f37" if e["speedup"] >= 1 else "#c33")
    ax.set_xscale("log")
    lo_all = min(min(e["gpu"]["ci95"][0], e["cpu"]["ci95"][0]) for e in entries)
    hi_all = max(max(e["gpu"]["ci95"][1], e["cpu"]["ci95"][1]) for e in entries)
    ax.set_xlim(max(lo_all, 1e-12) / 3, hi_all * 60)
    ax.set_yticks(y, labels, fontsize=7.5)
    ax.set_xlabel("ms per image (median of synchronized steps / batch size, log)\ntext: GPU speedup "
                  "(green: GPU faster, red: GPU slower)")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))


def dashboard(rec, path: Path) -> Path:
    d = rec.data
    fig = plt.figure(figsize=(19, 13.5))
    gs = fig.add_gridspec(2, 2, hspace=0.38, wspace=0.55, top=top(fig), bottom=0.1, left=0.06, right=0.97)
    _throughput_panel(fig.add_subplot(gs[0, 0]), d)
    _latency_panel(fig.add_subplot(gs[0, 1]), d)
    stages = [e for e in d["speedups"] if e["group"] == "pipeline_stage"]
    _stage_panel(fig.add_subplot(gs[1, 0]), stages, "Per-stage time per image, like-for-like")
    head = [e for e in d["speedups"] if e["headline"]]
    forest(fig.add_subplot(gs[1, 1]), head, "Headline speedups, window ranges (colour: kind of comparison)")
    scal = d.get("scalability") or {}
    note = ("Scalability: " + (scal.get("reason") or f"{len(scal.get('rows', []))} GPU counts measured")
            + f".   All {len(d['speedups'])} speedups are in gpu_cpu_performance_stats.json: "
            + f"{sum(e['kind'] == LIKE_FOR_LIKE for e in d['speedups'])} like-for-like (same configuration on both "
              "devices; settings that still differ are listed there), "
            + f"{sum(e['kind'] == BEST_VS_BEST for e in d['speedups'])} best-vs-best (each device's best).")
    fig.text(0.5, 0.015, wrap(note, 200), ha="center", fontsize=9)
    header(fig, rec, "GPU vs CPU performance dashboard: throughput, latency, per-stage times, speedups")
    return save_figure(fig, path)
