"""Figures of the utilization section: time series with section spans, per-core heatmap,
memory, temperature/power, per-stage utilization."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from common.atomic import save_figure
from common.plots.common import STAGE_COLORS, device_label, header, not_available

SECTION_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2"]


def _series(samples, key, t0):
    t = np.array([s["t"] - t0 for s in samples if s.get(key) is not None])
    v = np.array([s[key] for s in samples if s.get(key) is not None], dtype=float)
    return t, v


def _shade(ax, sections, t0, label=False):
    from matplotlib.patches import Patch

    handles = []
    for i, s in enumerate(sections):
        color = SECTION_COLORS[i % len(SECTION_COLORS)]
        ax.axvspan(s["start"] - t0, s["end"] - t0, color=color, alpha=0.08)
        handles.append(Patch(color=color, alpha=0.3, label=f"{s['name'].replace('_', ' ')} "
                                                               f"({s['end'] - s['start']:.0f} s)"))
    if label and handles:
        ax.figure.legend(handles=handles, loc="upper center", ncol=min(6, len(handles)), fontsize=7,
                         bbox_to_anchor=(0.5, 0.935), title="sections (shaded)", title_fontsize=7)


def timeline(record, path: Path) -> Path:
    d = record.data
    mon = d["monitor"]
    t0 = d["t0"]
    cpu = mon["cpu"]["samples"]
    gpu = (mon.get("gpu") or {}).get("samples") or []
    fig, axes = plt.subplots(4, 1, figsize=(14, 10), sharex=True)
    ax = axes[0]
    t, v = _series(cpu, "cpu_total_pct", t0)
    ax.plot(t, v, lw=0.8, label="CPU total %")
    if gpu:
        t, v = _series(gpu, "gpu_util_pct", t0)
        ax.plot(t, v, lw=0.8, color="#76b900", label="GPU util %")
        t, v = _series(gpu, "mem_util_pct", t0)
        ax.plot(t, v, lw=0.6, color="#555", alpha=0.7, label="GPU memory-bus %")
    ax.set_ylabel("utilization %")
    ax.set_ylim(0, 105)
    ax.legend(fontsize=7, loc="upper right")
    _shade(ax, d["sections"], t0, label=True)
    ax = axes[1]
    t, v = _series(cpu, "process_rss_mib", t0)
    ax.plot(t, v, lw=0.8, label="process RSS (MiB)")
    t2, v2 = _series(cpu, "children_rss_mib", t0)
    ax.plot(t2, v2, lw=0.8, label="worker processes RSS (MiB)")
    if gpu:
        t, v = _series(gpu, "memory_used_mib", t0)
        ax.plot(t, v, lw=0.8, color="#76b900", label="GPU memory used (MiB)")
    ax.set_ylabel("memory (MiB)")
    ax.legend(fontsize=7, loc="upper right")
    _shade(ax, d["sections"], t0)
    ax = axes[2]
    if gpu and any(s.get("power_w") is not None for s in gpu):
        t, v = _series(gpu, "power_w", t0)
        ax.plot(t, v, lw=0.8, color="#d62728", label="GPU power (W)")
        ax.set_ylabel("power (W)")
        ax2 = ax.twinx()
        t, v = _series(gpu, "temperature_c", t0)
        ax2.plot(t, v, lw=0.8, color="#ff7f0e", label="GPU temperature (°C)")
        ax2.set_ylabel("°C")
        ax.legend(fontsize=7, loc="upper left")
        ax2.legend(fontsize=7, loc="upper right")
    else:
        reason = (mon.get("unavailable") or {}).get("gpu") or "no GPU sampler"
        temp_err = mon["cpu"]["errors"].get("temperatures_c")
        rapl = mon["cpu"]["errors"].get("rapl_uj")
        not_available(ax, f"power: {reason}; CPU energy: {rapl or 'RAPL readable'}; temperatures: "
                          f"{temp_err or 'see samples'}")
    _shade(ax, d["sections"], t0)
    ax = axes[3]
    t, v = _series(cpu, "cpu_freq_mhz", t0)
    if len(t):
        ax.plot(t, v, lw=0.8, label="CPU frequency (MHz)")
    if gpu:
        ax2 = ax.twinx()
        t, v = _series(gpu, "sm_clock_mhz", t0)
        ax2.plot(t, v, lw=0.8, color="#76b900", label="GPU SM clock (MHz)")
        ax2.legend(fontsize=7, loc="upper right")
    ax.set_ylabel("MHz")
    ax.set_xlabel("seconds since the samplers started")
    ax.legend(fontsize=7, loc="upper left")
    _shade(ax, d["sections"], t0)
    header(fig, record, f"Utilization over the whole run at {mon['hz']:g} Hz (shaded: sections)")
    fig.subplots_adjust(top=0.86)
    return save_figure(fig, path)


def cores(record, path: Path) -> Path:
    d = record.data
    cpu = d["monitor"]["cpu"]["samples"]
    rows = [s["cpu_per_core_pct"] for s in cpu if s.get("cpu_per_core_pct")]
    fig, ax = plt.subplots(figsize=(14, 3 + 0.05 * (len(rows[0]) if rows else 1)))
    if rows:
        t0 = d["t0"]
        ts = [s["t"] - t0 for s in cpu if s.get("cpu_per_core_pct")]
        im = ax.imshow(np.array(rows).T, aspect="auto", cmap="magma", vmin=0, vmax=100, interpolation="nearest",
                       extent=[ts[0], ts[-1], len(rows[0]) - 0.5, -0.5])
        fig.colorbar(im, ax=ax, label="% busy")
        ax.set_ylabel("core")
        ax.set_xlabel("seconds since the samplers started")
        _shade(ax, d["sections"], t0, label=True)
    else:
        not_available(ax, "no per-core samples")
    header(fig, record, "Per-core CPU utilization")
    return save_figure(fig, path)


def stages(record, path: Path) -> Path:
    d = record.data
    per = d["per_stage"]
    fig, axes = plt.subplots(1, len(per), figsize=(5 * len(per), 4))
    axes = np.atleast_1d(axes)
    for ax, (key, st) in zip(axes, per.items()):
        if not st:
            not_available(ax, f"no {key} samples inside stage spans")
            continue
        names = list(st)
        ax.bar(names, [st[n]["mean"] for n in names], color=[STAGE_COLORS.get(n, "#999") for n in names])
        for i, n in enumerate(names):
            ax.text(i, st[n]["mean"], f"{st[n]['mean']:.0f}\n(n={st[n]['samples']})", ha="center", va="bottom",
                    fontsize=7)
        ax.set_title(f"mean {key} during each stage")
        ax.tick_params(axis="x", rotation=30, labelsize=7)
    header(fig, record, f"Per-stage utilization ({device_label(record.device)} run; samples inside stage spans)")
    return save_figure(fig, path)


def plot(record, arrays, out: Path, name: Callable[[str], str]) -> list[Path]:
    if not record.data.get("monitor"):
        fig, ax = plt.subplots(figsize=(8, 3))
        not_available(ax, record.data.get("reason"))
        return [save_figure(fig, out / name("utilization_timeline.png"))]
    return [timeline(record, out / name("utilization_timeline.png")),
            cores(record, out / name("cpu_core_heatmap.png")),
            stages(record, out / name("per_stage_utilization.png"))]
