"""Figures of the GPU vs CPU comparison: pure plotters, comparison records in, PNG files out.
Every figure names both machines and dates in its title, states units, and draws 95% intervals."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from common.atomic import save_figure
from common.comparison import BEST_VS_BEST, LIKE_FOR_LIKE
from common.comparison.compute import fmt_num, fmt_x, machine
from common.plots.common import DEVICE_COLORS, not_available

GPU_C, CPU_C = DEVICE_COLORS["cuda"], DEVICE_COLORS["cpu"]
HOST_C = "#9ecae1"  # the GPU run's host CPU
KIND_COLORS = {LIKE_FOR_LIKE: "#6a3d9a", BEST_VS_BEST: "#e6550d"}
GROUP_TITLES = {"training": "training", "pipeline": "pipeline", "pipeline_stage": "pipeline stages",
                "inference": "inference", "augmentation": "augmentation (batched)",
                "augmentation_host_cpu": "augmentation, MONAI per sample (host CPUs)", "volume3d": "3D volume"}


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
    """Speedups with 95% intervals on a log axis; > 1: the GPU is better."""
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
    ax.set_xlabel("speedup of the GPU over the CPU (x, log scale; > 1: GPU better; bars: 95% interval)")
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


# --- performance dashboard ---------------------------------------------------------------------------

DASH_IDS = {"training: tutorial recipe": "training.ladder.monai_tutorial_recipe.end_to_end",
            "training: device-resident": "pipeline.device_resident.end_to_end",
            "training: winner": "training.winner.end_to_end",
            "inference: best batch": "inference.throughput.best_batch",
            "augmentation chain: best way": "augmentation.chain.best"}
NOTE_BOX = {"facecolor": "white", "alpha": 0.9, "edgecolor": "#ccc", "boxstyle": "round,pad=0.4"}


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
    ax.set_ylabel("images/s (median, log scale; bars: 95% interval)")
    ax.set_title("Throughput (text: the GPU's speedup, 95% interval, kind)")
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
    ax.set_title("Inference latency, batch 1: median (with 95% interval), p95, p99")
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
    forest(fig.add_subplot(gs[1, 1]), head, "Headline speedups, 95% intervals (colour: kind of comparison)")
    scal = d.get("scalability") or {}
    note = ("Scalability: " + (scal.get("reason") or f"{len(scal.get('rows', []))} GPU counts measured")
            + f".   All {len(d['speedups'])} speedups are in gpu_cpu_performance_stats.json: "
            + f"{sum(e['kind'] == LIKE_FOR_LIKE for e in d['speedups'])} like-for-like (same configuration on both "
              "devices; settings that still differ are listed there), "
            + f"{sum(e['kind'] == BEST_VS_BEST for e in d['speedups'])} best-vs-best (each device's best).")
    fig.text(0.5, 0.015, wrap(note, 200), ha="center", fontsize=9)
    header(fig, rec, "GPU vs CPU performance dashboard: throughput, latency, per-stage times, speedups")
    return save_figure(fig, path)


# --- utilization --------------------------------------------------------------------------------------


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


# --- augmentation --------------------------------------------------------------------------------------


def _quality_table(ax, g: dict, c: dict, verdicts: list[str]) -> None:
    ax.set_axis_off()
    rows, cells = [], []

    def f(v, fmt):
        return "n/a" if v is None else fmt.format(v)

    transforms = list(dict.fromkeys(list(g.get("per_transform") or {}) + list(c.get("per_transform") or {})))
    for t in transforms:
        gt, ct = (g.get("per_transform") or {}).get(t, {}), (c.get("per_transform") or {}).get(t, {})
        rows.append(t)
        cells.append([f(gt.get("ssim_vs_input"), "{:.3f}"), f(ct.get("ssim_vs_input"), "{:.3f}"),
                      f(gt.get("vs_monai_max_abs"), "{:.1e}"), f(ct.get("vs_monai_max_abs"), "{:.1e}")])
    for k in dict.fromkeys(list(g.get("identity_checks") or {}) + list(c.get("identity_checks") or {})):
        rows.append("identity: " + k.replace("_max_abs", ""))
        cells.append(["", "", f((g.get("identity_checks") or {}).get(k), "{:.1e}"),
                      f((c.get("identity_checks") or {}).get(k), "{:.1e}")])
    if rows:
        tab = ax.table(cellText=cells, rowLabels=rows, colLabels=["SSIM vs input\nGPU run", "SSIM vs input\nCPU run",
                                                                  "max |Δ| vs MONAI\nGPU run",
                                                                  "max |Δ| vs MONAI\nCPU run"],
                       bbox=[0.38, 0.3, 0.62, 0.62], cellLoc="center")
        tab.auto_set_font_size(False)
        tab.set_fontsize(7.5)
    tol = g.get("tolerance_vs_monai") or c.get("tolerance_vs_monai")
    ax.set_title("Quality of the batched device chain (intensity range 0-1)\nSSIM vs its input; max |Δ| vs MONAI's "
                 "output (identity checks should be ~0)")
    ax.text(0.5, 0.0, wrap(" ".join(verdicts) + (f" Tolerance vs MONAI: {tol:.0e}." if tol else ""), 95),
            ha="center", va="bottom", fontsize=8, transform=ax.transAxes)


def augmentation_figure(rec, path: Path) -> Path:
    d = rec.data
    q = d.get("quality") or {}
    fig = plt.figure(figsize=(19, 12))
    gs = fig.add_gridspec(2, 2, width_ratios=[1.0, 1.1], height_ratios=[1.25, 1.0], wspace=0.35, hspace=0.42,
                          top=top(fig), bottom=0.05, left=0.06, right=0.97)
    ax = fig.add_subplot(gs[0, 0])
    g, c = q.get("gpu") or {}, q.get("cpu") or {}
    names = list(dict.fromkeys(list(c.get("per_sample_us", {})) + list(g.get("per_sample_us", {}))
                               + list(c.get("batched_us", {})) + list(g.get("batched_us", {}))))
    if names:
        x = np.arange(len(names))
        series = [("CPU run: MONAI per sample, 1 thread", c.get("per_sample_us", {}), CPU_C, 0.35, "//"),
                  ("GPU run's host CPU: MONAI per sample, 1 thread", g.get("per_sample_us", {}), GPU_C, 0.35, "//"),
                  (f"CPU run: batched on {c.get('device') or 'its device (no record)'}", c.get("batched_us", {}),
                   CPU_C, 1.0, None),
                  (f"GPU run: batched on {g.get('device') or 'its device (no record)'}", g.get("batched_us", {}),
                   GPU_C, 1.0, None)]
        w = 0.2
        for i, (label, vals, color, alpha, hatch) in enumerate(series):
            ax.bar(x + (i - 1.5) * w, [vals.get(n, np.nan) for n in names], w, color=color, alpha=alpha,
                   label=label, hatch=hatch, edgecolor="white")
        ax.set_yscale("log")
        lo, hi = ax.get_ylim()
        ax.set_ylim(lo, hi * 30)
        ax.set_xticks(x, names, fontsize=8)
        ax.legend(fontsize=7.5, loc="upper right", ncol=2)
    else:
        not_available(ax, "no augmentation record in one of the runs")
    ax.set_ylabel("microseconds per image (median, log scale)")
    ax.set_title("Time per image, transform by transform (missing bar: not done that way)")
    forest(fig.add_subplot(gs[:, 1]), d.get("speedups") or [], "Speedups per transform (GPU run over CPU run, "
           "95% intervals)", reason=d.get("reason"))
    _quality_table(fig.add_subplot(gs[1, 0]), g, c, q.get("verdicts", []))
    header(fig, rec, "GPU vs CPU augmentation: per-transform speed and quality of the MONAI tutorial chain")
    return save_figure(fig, path)


# --- pipeline ------------------------------------------------------------------------------------------


def _pipeline_row(sub, key: str, c: dict, by: dict) -> None:
    axes = sub.subplots(1, 3, gridspec_kw={"width_ratios": [1.1, 1.1, 1.0], "wspace": 0.5})
    sub.subplots_adjust(left=0.07, right=0.97, top=0.83, bottom=0.22)
    stages = c["stages"]
    ax = axes[0]
    y = np.arange(len(stages))[::-1]
    for off, dev, color in ((0.2, "gpu", GPU_C), (-0.2, "cpu", CPU_C)):
        meds = np.array([np.nan if s[f"{dev}_ms_per_image"] is None else s[f"{dev}_ms_per_image"] for s in stages])
        ci = [s[f"{dev}_ci95"] or [np.nan, np.nan] for s in stages]
        err = np.array([[max(0, m - a), max(0, b - m)] if math.isfinite(m) else [0, 0]
                        for m, (a, b) in zip(meds, ci)]).T
        ax.barh(y + off, meds, 0.4, xerr=err, color=color, capsize=2, label=f"{dev.upper()} run")
    ax.set_xscale("log")
    lo, hi = ax.get_xlim()
    ax.set_xlim(lo, hi * 50)
    ax.set_yticks(y, [s["stage"] for s in stages])
    for yi, s in zip(y, stages):
        if s["gpu_share"] is not None:
            share = "<1%" if s["gpu_share"] < 0.01 else f"{100 * s['gpu_share']:.0f}%"
            ax.text(0.99, yi, f"{share} of GPU step", va="center", ha="right", fontsize=7,
                    transform=ax.get_yaxis_transform())
    ax.set_xlabel("ms per image (median of synchronized steps / batch, log)")
    ax.set_title(f"Stage times\nGPU: {c['gpu_label']} | CPU: {c['cpu_label']}", fontsize=9)
    ax.legend(fontsize=7, loc="lower left")
    ents = [by[i] for i in [f"pipeline.{key}.end_to_end", f"pipeline.{key}.step_time", f"pipeline.{key}.model_stages",
                            f"pipeline.{key}.data_stages"] if i in by]
    ents += [by[f"pipeline.{key}.stage.{s['stage']}"] for s in stages if f"pipeline.{key}.stage.{s['stage']}" in by]
    ents = [dict(e, short=e["short"].split(": ", 1)[-1]) for e in ents]
    forest(axes[1], ents, "Speedups (like-for-like, 95% intervals)", label_width=40, show_kind=False)
    ax = axes[2]
    capped = [s for s in stages if s["amdahl_cap"] is not None]
    if capped:
        yy = np.arange(len(capped))[::-1]
        colors = ["#d62728" if s["stage"] == c["bounding_stage"] else "#9e9e9e" for s in capped]
        ax.barh(yy, [s["amdahl_cap"] for s in capped], color=colors)
        for yi, s in zip(yy, capped):
            ax.text(s["amdahl_cap"] * 1.15, yi, f"{fmt_x(s['amdahl_cap'])}x", va="center", fontsize=7.5)
        ax.set_yticks(yy, [s["stage"] for s in capped])
        ax.set_xscale("log")
        step = c.get("step_speedup")
        handles = []
        if step:
            handles.append(ax.axvline(step["speedup"], color="k", ls="--", lw=1,
                                      label=f"measured step speedup {fmt_x(step['speedup'])}x"))
            ax.axvspan(step["ci95"][0], step["ci95"][1], color="k", alpha=0.08)
        ax.set_xlim(0.5, max([s["amdahl_cap"] for s in capped] + [1]) * 10)
        handles.append(Patch(color="#d62728", label=f"bounding stage: {c['bounding_stage']}"))
        ax.legend(handles=handles, fontsize=7, loc="lower right")
    else:
        not_available(ax, "no stage time on the GPU")
    ax.set_xlabel("Amdahl cap = CPU step time / the stage's GPU time (x, log)")
    ax.set_title("Which stage bounds the end-to-end speedup", fontsize=9)
    sub.suptitle(f"{c['title']} ({c['kind']})", fontsize=10.5, fontweight="bold")
    sub.text(0.5, 0.015, wrap(c.get("verdict", "") + ".", 200), ha="center", va="bottom", fontsize=8.5)


def pipeline_figure(rec, path: Path) -> Path:
    d = rec.data
    cfgs = d.get("configs") or {}
    n = max(1, len(cfgs))
    fig = plt.figure(figsize=(19, 1.7 + 5.6 * n))
    head_in, foot_in = 1.05, 0.5
    h = fig.get_figheight()
    outer = fig.subfigures(3, 1, height_ratios=[head_in, h - head_in - foot_in, foot_in])
    if not cfgs:
        not_available(outer[1].add_subplot(111), d.get("reason"))
    else:
        rows = outer[1].subfigures(n, 1) if n > 1 else [outer[1]]
        by = {e["id"]: e for e in d.get("speedups") or []}
        for sub, (key, c) in zip(rows, cfgs.items()):
            _pipeline_row(sub, key, c, by)
    fig.text(0.5, 0.003, wrap(d.get("method", ""), 230), ha="center", fontsize=8, color="#444")
    header(fig, rec, "GPU vs CPU pipeline, stage by stage: which stage bounds the end-to-end speedup (Amdahl)")
    return save_figure(fig, path)


# --- visualizations: efficiency, performance comparison, radar ------------------------------------------


def _rung_bars(ax, eff: dict, key: str, ylabel: str, title: str, fmt: str = "{:.3g}", log: bool = True) -> None:
    g, c = eff["energy"].get("gpu") or {}, eff["energy"].get("cpu") or {}
    grs, crs = g.get("rungs") or [], c.get("rungs") or []
    names = list(dict.fromkeys([r["name"] for r in grs] + [r["name"] for r in crs]))
    if not names:
        not_available(ax, "no ladder in the records")
        ax.set_title(title)
        return
    gm, cm = {r["name"]: r for r in grs}, {r["name"]: r for r in crs}
    x = np.arange(len(names))
    reason_key = "energy_reason" if key in ("images_per_j", "j_per_image") else "power_reason"
    notes = []
    any_value = False
    for off, dev, rows, color in ((-0.2, "GPU", gm, GPU_C), (0.2, "CPU", cm, CPU_C)):
        vals = [(rows.get(n) or {}).get(key) for n in names]
        ax.bar(x + off, [np.nan if v is None else v for v in vals], 0.4, color=color, label=f"{dev} run")
        for xi, n, v in zip(x + off, names, vals):
            if v is not None:
                any_value = True
                ax.text(xi, v * (1.06 if log else 1.0), fmt.format(v), ha="center", va="bottom", fontsize=7)
            elif n in rows:
                ax.text(xi, 0.02, "n/a", ha="center", fontsize=7, color="#888", transform=ax.get_xaxis_transform())
        if rows and all(v is None for v in vals):
            reason = next((r.get(reason_key) for r in rows.values() if r.get(reason_key)), "not measured")
            notes.append(f"{dev} run: not available on this machine — {reason}")
    if notes:
        ax.text(0.5, 0.97, "\n".join(wrap(s, 62) for s in notes), ha="center", va="top", fontsize=7.5, color="#555",
                transform=ax.transAxes, bbox=NOTE_BOX)
    ax.set_xticks(x, [wrap(n, 14) for n in names], fontsize=7)
    if any_value:
        if log:
            ax.set_yscale("log")
            plain_log(ax)
            lo, hi = ax.get_ylim()
            ax.set_ylim(lo, hi * (30 if notes else 3))
        else:
            ax.set_ylim(0, ax.get_ylim()[1] * (1.6 if notes else 1.15))
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))


def _memory_panel(ax, eff: dict) -> None:
    mem = eff.get("memory") or {}
    shown = False
    for dev, color, marker in (("gpu", GPU_C, "o"), ("cpu", CPU_C, "s")):
        m = mem.get(dev) or {}
        pts = m.get("batch_sweep") or []
        if pts:
            shown = True
            ax.plot([p["batch_size"] for p in pts], [max(p["peak_memory_mib"], 1e-3) for p in pts], marker=marker,
                    color=color, label=f"{dev.upper()} run: {m.get('memory_kind')}")
            for p in pts:
                ax.text(p["batch_size"], max(p["peak_memory_mib"], 1e-3) * 1.15, f"{p['peak_memory_mib']:.0f}",
                        fontsize=7, ha="center")
    g, c = mem.get("gpu") or {}, mem.get("cpu") or {}
    if not shown:
        not_available(ax, "no peak memory recorded in either batch sweep")
    else:
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        plain_log(ax, "x")
        plain_log(ax, "y")
        lo, hi = ax.get_ylim()
        ax.set_ylim(lo, hi * 20)
        ax.legend(fontsize=6.5, loc="upper left", title="what was measured", title_fontsize=7)
    ax.set_xlabel("training batch size (batch-size sweep)")
    ax.set_ylabel("peak memory (MiB, log)")
    ax.set_title("Memory: peak during training")
    extra = []
    if g.get("device_memory_mib"):
        extra.append(f"GPU memory {g['device_memory_mib'] / 1024:.0f} GiB")
    if c.get("ram_gib"):
        extra.append(f"CPU machine RAM {c['ram_gib']:.0f} GiB")
    if extra:
        ax.text(0.98, 0.03, "; ".join(extra), transform=ax.transAxes, ha="right", fontsize=7.5, color="#555")


def _cost_panel(ax, eff: dict) -> None:
    cost = eff.get("cost") or {}
    cfgs = cost.get("configs") or {}
    names, vals, errs, reasons = [], {"gpu": [], "cpu": []}, {"gpu": [], "cpu": []}, []
    for cfg, row in cfgs.items():
        names.append("winning configuration" if cfg == "winner" else "tutorial recipe")
        for dev in ("gpu", "cpu"):
            x = row[dev]
            v = x.get("cost_per_million_images")
            vals[dev].append(np.nan if v is None else v)
            errs[dev].append([v - x["ci95"][0], x["ci95"][1] - v] if v is not None else [0, 0])
            if x.get("reason"):
                reasons.append(f"{dev.upper()}: {x['reason']}")
    x = np.arange(len(names))
    shown = any(np.isfinite(vals["gpu"] + vals["cpu"]))
    if shown:
        for off, dev, color in ((-0.2, "gpu", GPU_C), (0.2, "cpu", CPU_C)):
            ax.bar(x + off, vals[dev], 0.4, yerr=np.array(errs[dev]).T, color=color, capsize=3,
                   label=f"{dev.upper()} machine")
            for xi, v in zip(x + off, vals[dev]):
                ax.text(xi, v if np.isfinite(v) else 0, f"{v:.3g}" if np.isfinite(v) else "n/a", ha="center",
                        va="bottom", fontsize=7.5, color="k" if np.isfinite(v) else "#888",
                        transform=ax.transData if np.isfinite(v) else ax.get_xaxis_transform())
        ax.set_yscale("log")
        lo, hi = ax.get_ylim()
        ax.set_ylim(lo, hi * 30)
        ax.set_xticks(x, names)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
        ax.set_ylabel("cost per million training images\n(price currency, log; bars: 95% interval)")
    else:
        ax.set_axis_off()

    def price(v):
        return "not given" if v is None else f"{v}/h"

    ax.set_title(f"Cost per million images (price: GPU machine {price(cost.get('gpu_price_per_hour'))}, CPU machine "
                 f"{price(cost.get('cpu_price_per_hour'))})")
    if reasons:
        ax.text(0.5, 0.97 if shown else 0.5, "\n".join(wrap(r, 62) for r in sorted(set(reasons))), ha="center",
                va="top" if shown else "center", fontsize=7.5, color="#555", transform=ax.transAxes, bbox=NOTE_BOX)


def efficiency_figure(rec, path: Path) -> Path:
    eff = rec.data
    fig = plt.figure(figsize=(20, 12))
    gs = fig.add_gridspec(2, 3, hspace=0.5, wspace=0.42, top=top(fig, 0.2), bottom=0.08, left=0.05, right=0.96)
    _memory_panel(fig.add_subplot(gs[0, 0]), eff)
    _rung_bars(fig.add_subplot(gs[0, 1]), eff, "power_w", "average power (W)",
               "Power per ladder rung\n(GPU: board power, NVML samples; CPU: RAPL energy / time)", "{:.0f}", log=False)
    _rung_bars(fig.add_subplot(gs[0, 2]), eff, "images_per_j", "training images per joule (log)",
               "Images per joule per rung (hardware energy counters)")
    _rung_bars(fig.add_subplot(gs[1, 0]), eff, "perf_per_watt", "img/s per watt (log)",
               "Performance per watt per rung\n(throughput / average power)")
    _cost_panel(fig.add_subplot(gs[1, 1]), eff)
    ax = fig.add_subplot(gs[1, 2])
    ax.set_axis_off()
    lines = []
    for gmt in eff.get("gains", []):
        if gmt.get("gain"):
            lines.append(f"• {gmt['metric']}: GPU {fmt_x(gmt['gain'])}x better [{gmt['kind']}] (no interval: "
                         f"{gmt['interval_reason']})")
        else:
            lines.append(f"• {gmt['metric']}: not available — {gmt.get('reason')}")
    ax.text(0, 1, "Efficiency gains (GPU run / CPU run)\n\n" + "\n".join(wrap(s, 70) for s in lines), va="top",
            fontsize=8, transform=ax.transAxes)
    header(fig, rec, "GPU vs CPU efficiency: memory, power, images per joule, performance per watt, cost")
    return save_figure(fig, path)


def performance_comparison_figure(rec, path: Path) -> Path:
    eff = rec.data
    entries = eff.get("speedups_brief") or []
    groups = list(dict.fromkeys(e["group"] for e in entries))
    ordered = [e for g in groups for e in entries if e["group"] == g]
    h = max(8.0, 0.2 * len(ordered) + 3.0)
    fig = plt.figure(figsize=(19, h))
    gs = fig.add_gridspec(2, 2, width_ratios=[1.4, 1.0], height_ratios=[1.0, max(0.1, h / 5.0 - 1.0)],
                          wspace=0.55, hspace=0.25, top=top(fig), bottom=0.7 / h, left=0.13, right=0.97)
    ax = fig.add_subplot(gs[:, 0])
    forest(ax, ordered, "Every speedup (GPU run over CPU run) with its 95% interval", label_width=48)
    y = np.arange(len(ordered))[::-1]
    prev = None
    for yi, e in zip(y, ordered):
        if e["group"] != prev:
            ax.axhline(yi + 0.5, color="#999", lw=0.6)
            ax.text(0.995, yi + 0.05, GROUP_TITLES.get(e["group"], e["group"]), transform=ax.get_yaxis_transform(),
                    ha="right", va="bottom", fontsize=8, fontweight="bold", color="#555")
            prev = e["group"]
    ax = fig.add_subplot(gs[0, 1])
    gains = eff.get("gains") or []
    yy = np.arange(len(gains))[::-1]
    for yi, gmt in zip(yy, gains):
        if gmt.get("gain"):
            ax.barh(yi, gmt["gain"], color=KIND_COLORS.get(gmt["kind"], "#555"))
            ax.text(gmt["gain"] * 1.1, yi, f"{fmt_x(gmt['gain'])}x", va="center", fontsize=8)
        else:
            ax.text(0.6, yi, wrap("not available: " + str(gmt.get("reason")), 60), va="center", fontsize=7,
                    color="#777")
    ax.axvline(1, color="k", lw=0.8)
    ax.set_xscale("log")
    finite = [g["gain"] for g in gains if g.get("gain")]
    ax.set_xlim(0.5, max(finite + [10]) * 30)
    ax.set_ylim(-0.6, len(gains) - 0.4)
    ax.set_yticks(yy, [wrap(g["metric"], 34) for g in gains], fontsize=7.5)
    ax.set_xlabel("GPU run / CPU run (x, log; > 1: GPU more efficient)")
    ax.set_title("Efficiency gains (one energy window per rung, prices: no intervals)")
    ax = fig.add_subplot(gs[1, 1])
    ax.set_axis_off()
    n_gpu = sum(e["ci95"][0] > 1 for e in entries)
    n_cpu = sum(e["ci95"][1] < 1 for e in entries)
    counts = {k: sum(e["kind"] == k for e in entries) for k in KIND_COLORS}
    ax.text(0, 1, wrap(
        f"How to read: each dot is the GPU run's median over the CPU run's (for times: CPU over GPU), so right of 1 "
        f"the GPU is better; the bar is the 95% bootstrap interval of that ratio. {counts[LIKE_FOR_LIKE]} comparisons "
        f"are like-for-like (the same configuration on both devices), {counts[BEST_VS_BEST]} best-vs-best (each "
        f"device's best configuration). The GPU is better in {n_gpu}, the CPU in {n_cpu}, and "
        f"{len(entries) - n_gpu - n_cpu} show no clear difference (interval spans 1). 'host CPUs' rows run on the CPU "
        f"of each run's machine: they compare the two machines' CPUs, not GPU and CPU. Labels are shortened: "
        f"gpu_cpu_performance_stats.json has each full description, both configurations and the settings that "
        f"differ.", 75), va="top", fontsize=9, transform=ax.transAxes)
    header(fig, rec, "GPU vs CPU: speedup ratios and efficiency gains")
    return save_figure(fig, path)


def radar_figure(rec, path: Path) -> Path:
    r = rec.data.get("radar") or {}
    axes = r.get("axes") or []
    fig = plt.figure(figsize=(12, 12))
    if len(axes) < 3:
        ax = fig.add_subplot(111)
        not_available(ax, "fewer than three quantities measured in both runs")
    else:
        ax = fig.add_axes([0.2, 0.17, 0.6, 0.6], projection="polar")
        ang = np.linspace(0, 2 * np.pi, len(axes), endpoint=False)
        for dev, color in (("gpu", GPU_C), ("cpu", CPU_C)):
            rad = [a[f"{dev}_radius"] for a in axes]
            ax.plot(np.r_[ang, ang[:1]], rad + rad[:1], color=color, lw=2, label=f"{dev.upper()} run")
            ax.fill(np.r_[ang, ang[:1]], rad + rad[:1], color=color, alpha=0.2)
        labels = []
        for a in axes:
            better = "" if a["higher_is_better"] else "\n(lower is better)"
            labels.append(f"{a['name']}{better}\nGPU {fmt_num(a['gpu'])} | CPU {fmt_num(a['cpu'])} {a['unit']}")
        ax.set_xticks(ang, labels, fontsize=8.5)
        ax.tick_params(axis="x", pad=22)
        dec = r.get("decades", 3)
        ticks = [k / dec for k in range(dec + 1)]
        ax.set_yticks(ticks, [f"1/{10 ** (dec - k):,}" if k < dec else "better device" for k in range(dec + 1)],
                      fontsize=7, color="#666")
        ax.set_rlabel_position(90 / len(axes))
        ax.set_ylim(0, 1.0)
        ax.legend(loc="upper left", bbox_to_anchor=(1.05, 1.12))
    text = "Normalization: " + r.get("normalization", "")
    if r.get("missing"):
        text += "\nNot shown (not available on this machine): " + "; ".join(
            f"{m['name']} ({m['reason']})" for m in r["missing"])
    fig.text(0.5, 0.02, wrap(text, 140), ha="center", fontsize=8.5)
    header(fig, rec, "GPU vs CPU at a glance (radar, each axis normalized to the better device)")
    return save_figure(fig, path)


# --- reports and metrics figures --------------------------------------------------------------------------


def headline_figure(rec, path: Path) -> Path:
    d = rec.data
    head = d.get("headline_speedups") or []
    text = "\n".join(wrap(f"• {v['text']}", 200) for v in d.get("verdicts") or [])
    text_in = 0.17 * (text.count("\n") + 1) + 0.3
    plot_in = 0.38 * len(head) + 1.4
    h = 1.3 + plot_in + text_in
    fig = plt.figure(figsize=(17, h))
    ax = fig.add_axes([0.22, (text_in + 0.7) / h, 0.72, (plot_in - 0.9) / h])
    forest(ax, head, "Headline speedups (GPU run over CPU run) with 95% intervals")
    fig.text(0.02, (text_in - 0.1) / h, text, va="top", fontsize=8.5)
    header(fig, rec, "GPU vs CPU comparison: the verdicts")
    return save_figure(fig, path)


def overview_figure(rec, path: Path) -> Path:
    d = rec.data
    g, c = d["machines"]["gpu"], d["machines"]["cpu"]
    rows = [("GPU", "gpu_name"), ("GPU memory (MiB)", "gpu_memory_mib"), ("driver", "driver"),
            ("host", "hostname"), ("CPU model", "cpu_model"), ("physical cores", "physical_cores"),
            ("threads used", "threads_used"), ("date (UTC)", "time_utc"), ("torch", "torch"), ("MONAI", "monai"),
            ("git commit", "git_commit"), ("uncommitted changes", "git_dirty"), ("quick mode", "quick"),
            ("recipe batch size", "batch_size"), ("data", "dataset_source"), ("images", "dataset_images"),
            ("synthetic data", "synthetic")]

    def f(v):
        if v is None:
            return "n/a"
        if isinstance(v, float):
            return f"{v:.0f}"
        return str(v)[:44]

    notes = d.get("notes") or []
    counts = d.get("counts") or {}
    note_text = ("Notes\n" + "\n".join(wrap("• " + n, 160) for n in notes)
                 + f"\n\n{counts.get(LIKE_FOR_LIKE, 0)} like-for-like and {counts.get(BEST_VS_BEST, 0)} best-vs-best "
                   "comparisons; the input record files are listed in gpu_cpu_comparison_summary.json.")
    note_in = 0.17 * (note_text.count("\n") + 1) + 0.3
    h = 1.3 + 0.27 * (len(rows) + 1) + note_in
    fig = plt.figure(figsize=(14, h))
    ax = fig.add_axes([0.17, (note_in + 0.1) / h, 0.8, 0.27 * (len(rows) + 1) / h])
    ax.set_axis_off()
    tab = ax.table(cellText=[[f(g.get(k)), f(c.get(k))] for _, k in rows], rowLabels=[r for r, _ in rows],
                   colLabels=["GPU run", "CPU run"], bbox=[0, 0, 1, 1], cellLoc="left")
    tab.auto_set_font_size(False)
    tab.set_fontsize(8.5)
    fig.text(0.03, note_in / h, note_text, va="top", fontsize=8.5)
    header(fig, rec, "The two runs compared (from their records' environments)")
    return save_figure(fig, path)


def plot_all(records: dict[str, Any], root: Path) -> list[Path]:
    """Draw every comparison figure under ``root`` (comparison_results/ or its staging folder)."""
    perf = records["comparison_performance"]
    eff = records["comparison_efficiency"]
    summary = records["comparison_summary"]
    return [
        dashboard(perf, root / "performance_comparison" / "gpu_cpu_performance_dashboard.png"),
        utilization_figure(records["comparison_utilization"],
                           root / "utilization_comparison" / "gpu_cpu_utilization_comparison.png"),
        augmentation_figure(records["comparison_augmentation"],
                            root / "augmentation_comparison" / "gpu_cpu_augmentation_comparison.png"),
        pipeline_figure(records["comparison_pipeline"],
                        root / "pipeline_comparison" / "gpu_cpu_pipeline_comparison.png"),
        efficiency_figure(eff, root / "visualizations" / "gpu_cpu_efficiency_analysis.png"),
        performance_comparison_figure(eff, root / "visualizations" / "gpu_cpu_performance_comparison.png"),
        radar_figure(eff, root / "visualizations" / "gpu_cpu_radar_chart.png"),
        headline_figure(summary, root / "reports" / "gpu_cpu_headline_speedups.png"),
        overview_figure(summary, root / "metrics" / "gpu_cpu_comparison_overview.png"),
    ]
