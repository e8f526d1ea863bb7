"""Figures of the performance section."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from common.atomic import save_figure
from common.plots.common import (
    DEVICE_COLORS,
    bars_or_missing,
    device_label,
    errbar,
    errbar_note,
    fmt_rate,
    header,
    not_available,
)
from common.sections.performance_analysis import plot_inference as inference_plots


def _ok(rows):
    return [r for r in rows if not r.get("error") and r.get("images_per_s")]


def batch_sweep(record, path: Path) -> Path:
    d = record.data
    rows = _ok(d["batch_sweep"])
    col = DEVICE_COLORS[record.device]
    fig, axes = plt.subplots(1, 4, figsize=(17, 4.2))
    b = [r["batch_size"] for r in rows]
    m, e = zip(*[errbar(r["images_per_s"]) for r in rows]) if rows else ([], [])
    axes[0].errorbar(b, m, yerr=np.array(e).T if rows else None, marker="o", color=col, capsize=3)
    for x, y in zip(b, m):
        axes[0].annotate(fmt_rate(y), (x, y), textcoords="offset points", xytext=(0, 5), fontsize=7, ha="center")
    axes[0].set_title("Training throughput")
    axes[0].set_ylabel("images/s")
    lat = [r["step_latency_ms"]["median"] for r in rows]
    axes[1].plot(b, lat, marker="o", color=col)
    axes[1].set_title("Step latency")
    axes[1].set_ylabel("ms per step")
    mem = [r["peak_memory_mib"] for r in rows]
    if any(v is not None for v in mem):
        axes[2].plot([x for x, v in zip(b, mem) if v is not None], [v for v in mem if v is not None], marker="o",
                     color=col)
        axes[2].set_title("Peak memory")
        axes[2].set_ylabel(f"MiB ({rows[0]['memory_kind']})" if rows else "MiB")
        axes[2].yaxis.label.set_size(7)
    else:
        not_available(axes[2], "no memory measurement")
    ipj = [r["images_per_j"] for r in rows]
    if any(v is not None for v in ipj):
        axes[3].plot([x for x, v in zip(b, ipj) if v is not None], [v for v in ipj if v is not None], marker="o",
                     color=col)
        axes[3].set_title("Energy efficiency")
        axes[3].set_ylabel("images per joule")
    else:
        not_available(axes[3], next((r["energy_reason"] for r in rows if r.get("energy_reason")), None))
    for ax in axes:
        if ax.axison:
            ax.set_xscale("log", base=2)
            ax.set_xlabel("batch size")
    errs = [f"batch {r['batch_size']}: {r['error']}" for r in d["batch_sweep"] if r.get("error")]
    if errs:
        fig.text(0.5, -0.03, "; ".join(errs), ha="center", fontsize=8, color="#c00")
    lv = d["base_levers"]
    header(fig, record, f"Batch-size sweep on the {device_label(record.device)}: {lv['data_path']}, {lv['precision']}"
                        f"{', channels_last' if lv['channels_last'] else ''} "
                        f"({errbar_note(r['images_per_s'] for r in rows)})")
    return save_figure(fig, path)


def precision(record, path: Path) -> Path:
    d = record.data
    rows = _ok(d["precision"])
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    labels = [r["label"] for r in rows]
    x = np.arange(len(rows))
    m, e = zip(*[errbar(r["images_per_s"]) for r in rows]) if rows else ([], [])
    axes[0].bar(x, m, yerr=np.array(e).T if rows else None, color=DEVICE_COLORS[record.device], capsize=3)
    for i, v in enumerate(m):
        axes[0].text(i, v, fmt_rate(v), ha="center", va="bottom", fontsize=8)
    axes[0].set_xticks(x, labels, rotation=15, fontsize=8)
    axes[0].set_title("Training throughput by precision")
    axes[0].set_ylabel(f"images/s ({errbar_note(r['images_per_s'] for r in rows)})", fontsize=8)
    gib = [r["images_per_gib"] for r in rows]
    if any(v is not None for v in gib):
        bars_or_missing(axes[1], x, gib, [r.get("memory_reason") or "no peak memory measured" for r in rows],
                        color="#9467bd")
        axes[1].set_xticks(x, labels, rotation=15, fontsize=8)
        axes[1].set_title("Memory efficiency")
        axes[1].set_ylabel("images in flight per GiB of peak memory")
    else:
        not_available(axes[1], "no peak memory measurement")
    ipj = [r["images_per_j"] for r in rows]
    if any(v is not None for v in ipj):
        bars_or_missing(axes[2], x, ipj, [r.get("energy_reason") for r in rows], color="#2ca02c")
        axes[2].set_xticks(x, labels, rotation=15, fontsize=8)
        axes[2].set_title("Power efficiency")
        axes[2].set_ylabel("images per joule (energy counter)")
    else:
        not_available(axes[2], next((r["energy_reason"] for r in rows if r.get("energy_reason")), None))
    note = d.get("bf16_reason")
    if note:
        fig.text(0.5, -0.03, f"bf16 not measured: {note}", ha="center", fontsize=8)
    header(fig, record, f"Precision and memory format on the {device_label(record.device)} "
                        f"(batch {d['base_levers']['batch_size']})")
    return save_figure(fig, path)


def inference(record, path: Path) -> Path:
    d = record.data
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(13, 4.2))
    lat = d["inference_latency"]
    pcts = ["p50_ms", "p90_ms", "p95_ms", "p99_ms"]
    x = np.arange(len(pcts))
    w = 0.8 / max(1, len(lat))
    for i, (prec, r) in enumerate(lat.items()):
        vals = [r[p] for p in pcts]
        ax.bar(x + i * w - 0.4 + w / 2, vals, w, label=prec)
        for j, v in enumerate(vals):
            ax.text(x[j] + i * w - 0.4 + w / 2, v, f"{v:.2f}", ha="center", va="bottom", fontsize=7)
    ax.set_xticks(x, [p.replace("_ms", "") for p in pcts])
    ax.set_ylabel("ms per image (batch 1, synchronized)")
    ax.set_title(f"Batch-1 latency percentiles ({next(iter(lat.values()))['calls']} calls)")
    ax.legend()
    rows = _ok(d["inference_throughput"])
    b = [r["batch_size"] for r in rows]
    m, e = zip(*[errbar(r["images_per_s"]) for r in rows]) if rows else ([], [])
    ax2.errorbar(b, m, yerr=np.array(e).T if rows else None, marker="o", color=DEVICE_COLORS[record.device],
                 capsize=3)
    best = d.get("inference_best_batch")
    for x0, y0 in zip(b, m):
        ax2.annotate(fmt_rate(y0), (x0, y0), textcoords="offset points", xytext=(0, 5), fontsize=7, ha="center")
    ax2.set_xscale("log", base=2)
    ax2.set_xlabel("batch size")
    ax2.set_ylabel(f"images/s ({errbar_note(r['images_per_s'] for r in rows)})", fontsize=8)
    ax2.set_title(f"Inference throughput (best batch: {best})")
    header(fig, record, f"DenseNet121 inference on the {device_label(record.device)}")
    return save_figure(fig, path)


def threads(record, path: Path) -> Path:
    d = record.data
    fig, ax = plt.subplots(figsize=(7, 4.2))
    ts = d.get("thread_scaling")
    if not ts:
        not_available(ax, d.get("thread_scaling_reason"))
    else:
        rows = ts["rows"]
        t = [r["threads"] for r in rows]
        ax.plot(t, [r["speedup_vs_1"] for r in rows], marker="o", label="measured")
        ax.plot(t, t, ls="--", color="#999", label="linear")
        for r in rows:
            ax.annotate(f"{fmt_rate(r['images_per_s']['median'])} img/s\n{100 * r['parallel_efficiency']:.0f}% eff.",
                        (r["threads"], r["speedup_vs_1"]), textcoords="offset points", xytext=(4, -18), fontsize=7)
        ax.set_xlabel("torch threads")
        ax.set_ylabel("speedup over 1 thread")
        ax.legend()
        ax.set_title(f"Thread scaling ({ts['workload']}, {ts['physical_cores']} physical cores)")
    header(fig, record, "CPU thread scaling")
    return save_figure(fig, path)


def plot(record, arrays, out: Path, name: Callable[[str], str]) -> list[Path]:
    return [batch_sweep(record, out / name("batch_size_sweep.png")),
            precision(record, out / name("precision_memory_power.png")),
            inference(record, out / name("inference_latency.png")),
            inference_plots.latency_ladder(record, out / name("inference_ladder.png")),
            inference_plots.throughput_curve(record, out / name("inference_throughput_latency.png")),
            threads(record, out / name("thread_scaling.png"))]
