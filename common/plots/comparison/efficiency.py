"""visualizations/: efficiency (energy, power, memory, cost), the performance comparison and the radar."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from common.atomic import save_figure
from common.comparison import BEST_VS_BEST, LIKE_FOR_LIKE
from common.comparison.text import fmt_num, fmt_x
from common.plots.common import not_available
from common.plots.comparison.base import (
    CPU_C,
    GPU_C,
    GROUP_TITLES,
    KIND_COLORS,
    NOTE_BOX,
    forest,
    header,
    plain_log,
    top,
    wrap,
)


def _rung_bars(ax, eff: dict, key: str, ylabel: str, title: str, fmt: str = "{:.3g}", log: bool = True) -> None:
    g, c = eff["energy"].get("gpu") or {}, eff["energy"].get("cpu") or {}
    grs, crs = g.get("rungs") or [], c.get("rungs") or []
    ids = list(dict.fromkeys([r["id"] for r in grs] + [r["id"] for r in crs]))
    names = [next(r["name"] for r in grs + crs if r["id"] == i) for i in ids]
    if not names:
        not_available(ax, "no ladder in the records")
        ax.set_title(title)
        return
    gm, cm = {r["id"]: r for r in grs}, {r["id"]: r for r in crs}
    x = np.arange(len(names))
    reason_key = "energy_reason" if key in ("images_per_j", "j_per_image") else "power_reason"
    notes = []
    any_value = False
    for off, dev, rows, color in ((-0.2, "GPU", gm, GPU_C), (0.2, "CPU", cm, CPU_C)):
        vals = [(rows.get(i) or {}).get(key) for i in ids]
        ax.bar(x + off, [np.nan if v is None else v for v in vals], 0.4, color=color, label=f"{dev} run")
        for xi, i, v in zip(x + off, ids, vals):
            if v is not None:
                any_value = True
                ax.text(xi, v * (1.06 if log else 1.0), fmt.format(v), ha="center", va="bottom", fontsize=7)
            elif i in rows:
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
        ax.set_ylabel("cost per million training images\n(price currency, log; bars: window range)")
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
    forest(ax, ordered, "Every speedup (GPU run over CPU run) with its window range", label_width=48)
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
