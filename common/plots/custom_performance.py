"""Figures of a custom pipeline's performance section: batch sweep, inference latency and
throughput, and the levers one at a time."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from common.atomic import save_figure
from common.plots.common import DEVICE_COLORS, device_label, errbar, fmt_rate, header, not_available


def _sweep(ax, rows, col, key, title, ylabel):
    ok = [r for r in rows if not r.get("error") and r.get(key)]
    if not ok:
        not_available(ax, "no batch size was measured")
        return
    b = [r["batch_size"] for r in ok]
    m, e = zip(*[errbar(r[key]) for r in ok])
    ax.errorbar(b, m, yerr=np.array(e).T, marker="o", color=col, capsize=3)
    for x, y in zip(b, m):
        ax.annotate(fmt_rate(y), (x, y), textcoords="offset points", xytext=(0, 5), fontsize=7, ha="center")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("batch size")
    ax.set_ylabel(ylabel)
    ax.set_title(title)


def overview(record, path: Path) -> Path:
    d = record.data
    col = DEVICE_COLORS[record.device]
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.4))
    if d.get("batch_sweep_skipped"):
        not_available(axes[0], f"training batch sweep skipped: {d['batch_sweep_skipped']}")
    else:
        _sweep(axes[0], d["batch_sweep"], col, "images_per_s", "Training throughput (model-only steps)",
               "images/s")
    if d.get("inference_throughput_skipped"):
        not_available(axes[1], d["inference_throughput_skipped"])
    else:
        _sweep(axes[1], d["inference_throughput"], col, "images_per_s", "Inference throughput", "images/s")
    lat = d["inference_latency"]
    vals = lat["summary"]["values"]
    axes[2].hist(vals, bins=30, color=col)
    for q, ls in (("p50_ms", "-"), ("p95_ms", "--"), ("p99_ms", ":")):
        axes[2].axvline(lat[q], color="k", ls=ls, label=f"{q[:3]} {lat[q]:.2f} ms")
    axes[2].set_xlabel("ms per call (batch 1, synchronized)")
    axes[2].set_title("Inference latency at batch 1")
    axes[2].legend(fontsize=8)
    errs = [f"batch {r['batch_size']}: {r['error']}" for r in d["batch_sweep"] + d["inference_throughput"]
            if r.get("error")]
    if errs:
        fig.text(0.5, -0.03, "; ".join(errs), ha="center", fontsize=8, color="#c00")
    header(fig, record, f"Performance on the {device_label(record.device)}, input {tuple(d['input_shape'])}")
    return save_figure(fig, path)


def levers(record, path: Path) -> Path:
    lv = record.data["levers"]
    fig, axes = plt.subplots(1, 2, figsize=(15, 4.4))
    for ax, part, key, unit, title in ((axes[0], lv["training"], "images_per_s", "training images/s (end to end)",
                                        "Training levers, one at a time"),
                                       (axes[1], lv["inference_batch1"], None, "ms per call, p50 (batch 1)",
                                        "Inference levers at batch 1")):
        names = list(part)
        vals, notes = [], []
        for n in names:
            r = part[n]
            if r.get("skipped"):
                vals.append(0.0)
                notes.append(f"not available: {r['skipped']}")
            else:
                vals.append(r[key]["median"] if key else r["p50_ms"])
                notes.append(fmt_rate(vals[-1]) if key else f"{vals[-1]:.2f} ms")
        y = np.arange(len(names))
        ax.barh(y, vals, color=["#bbb" if part[n].get("skipped") else "#4c72b0" for n in names])
        for i, t in enumerate(notes):
            ax.text(vals[i] if vals[i] else 0, i, " " + t, va="center", fontsize=8)
        ax.set_yticks(y, [part[n].get("label", n) if key else n for n in names], fontsize=8)
        ax.set_xlabel(unit)
        ax.set_title(title)
        ax.margins(x=0.45)
    header(fig, record, f"Levers on the {device_label(record.device)}")
    return save_figure(fig, path)


def plot(record, arrays, out: Path, name: Callable[[str], str]) -> list[Path]:
    return [overview(record, out / name("custom_performance.png")), levers(record, out / name("custom_levers.png"))]
