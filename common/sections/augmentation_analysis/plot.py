"""Figures of the augmentation section."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from common.atomic import save_figure
from common.plots.common import DEVICE_COLORS, device_label, errbar, errbar_note, fmt_rate, header


def timing(record, path: Path) -> Path:
    d = record.data
    cpu = d["cpu_per_sample"]["per_transform_us"]
    dev = d["device_batched"]["per_transform_us"]
    names = list(cpu)
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(13, 4.8), gridspec_kw={"width_ratios": [2.2, 1]})
    x = np.arange(len(names))
    m, e = zip(*[errbar(cpu[n]) for n in names])
    ax.bar(x - 0.2, m, 0.4, yerr=np.array(e).T, label="MONAI per sample, 1 CPU thread", color="#1f77b4", capsize=2)
    dm, de = zip(*[errbar(dev.get(n)) for n in names])
    ax.bar(x + 0.2, dm, 0.4, yerr=np.array(de).T, color=DEVICE_COLORS[record.device], capsize=2,
           label=f"batched on {device_label(record.device)} (batch {d['device_batched']['batch_size']})")
    for i, n in enumerate(names):
        if n not in dev:
            ax.text(i + 0.2, min(v for v in m if v > 0), "n/a\n(done at\nupload)", ha="center", fontsize=7)
    ax.set_yscale("log")
    ax.set_xticks(x, names, rotation=15)
    ax.set_ylabel("µs per image (log; random transforms forced to fire)")
    ax.set_title("Per-transform cost")
    ax.legend(fontsize=8)
    c = d["cpu_per_sample"]["chain_images_per_s"]
    g = d["device_batched"]["chain_images_per_s"]
    vals = [c, g]
    labels = ["MONAI per sample\n1 CPU thread", f"batched\n{device_label(record.device)}"]
    for i, v in enumerate(vals):
        mm, ee = errbar(v)
        ax2.bar(i, mm, yerr=np.array([ee]).T, color=["#1f77b4", DEVICE_COLORS[record.device]][i], capsize=3)
        ax2.text(i, mm, f"{fmt_rate(mm)} img/s", ha="center", va="bottom", fontsize=9)
    ax2.set_yscale("log")
    ax2.set_xticks([0, 1], labels)
    ax2.set_title(f"Whole chain at p=0.5: {d['chain_speedup_batched_vs_per_sample']:.0f}x")
    ax2.set_ylabel("images/s (log)")
    note = errbar_note([*cpu.values(), *dev.values(), c, g])
    header(fig, record, f"Augmentation: MONAI tutorial chain, per sample vs batched ({note})")
    return save_figure(fig, path)


def quality(record, path: Path) -> Path:
    q = record.data["quality"]
    per = q["per_transform"]
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(13, 4.5))
    names = list(per)
    x = np.arange(len(names))
    ax.bar(x, [per[n]["ssim_vs_input"] for n in names], color="#2ca02c")
    for i, n in enumerate(names):
        p = per[n]["psnr_vs_input_db"]
        ax.text(i, per[n]["ssim_vs_input"], f"SSIM {per[n]['ssim_vs_input']:.3f}\nPSNR "
                f"{'∞' if p is None else f'{p:.1f}'} dB", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(x, names)
    ax.set_ylim(0, 1.15)
    ax.set_title("How much each transform changes the image (vs its input)")
    ax.set_ylabel("mean SSIM")
    diffs = [max(per[n]["vs_monai_max_abs"], 1e-12) for n in names]
    ax2.bar(x, diffs, color="#9467bd")
    tol = record.data.get("tolerance_vs_monai", 1e-4)
    ax2.axhline(tol, color="#d62728", ls="--", label=f"stated tolerance {tol:g}")
    for i, v in enumerate(diffs):
        ax2.text(i, v, f"{v:.1e}", ha="center", va="bottom", fontsize=8)
    ax2.set_yscale("log")
    ax2.set_xticks(x, names)
    ax2.set_title(f"Batched {device_label(record.device)} chain vs MONAI, same random parameters (max |Δ|)")
    ax2.legend(fontsize=8)
    ident = q["identity_checks"]
    fig.text(0.5, -0.02, "identity checks (max |Δ|): " + ", ".join(f"{k.replace('_max_abs', '')} {v:.1e}"
                                                                    for k, v in ident.items()),
             ha="center", fontsize=8)
    header(fig, record, f"Augmentation quality ({q['n_images']} images)")
    return save_figure(fig, path)


def gallery(record, path: Path) -> Path:
    g = record.data["quality"]["gallery"]
    n = len(g["input_u8"])
    fig, axes = plt.subplots(2, n, figsize=(2 * n, 4.6))
    for i in range(n):
        axes[0, i].imshow(np.array(g["input_u8"][i]), cmap="gray", vmin=0, vmax=255)
        axes[1, i].imshow(np.array(g["output_u8"][i]), cmap="gray", vmin=0, vmax=255)
        p = g["params"][i]
        desc = []
        if p["rotate"]:
            desc.append(f"rot {p['angle_deg']:+.1f}°")
        if p["flip"]:
            desc.append("flip")
        if p["zoom"]:
            desc.append(f"zoom {p['zoom_factor']:.2f}")
        axes[1, i].set_title(", ".join(desc) or "unchanged", fontsize=8)
        for a in axes[:, i]:
            a.set_axis_off()
    axes[0, 0].set_title("input", fontsize=8)
    header(fig, record, f"Gallery: input (top) and the batched {device_label(record.device)} chain's output (bottom)")
    return save_figure(fig, path)


def plot(record, arrays, out: Path, name: Callable[[str], str]) -> list[Path]:
    return [timing(record, out / name("augmentation_timing.png")),
            quality(record, out / name("augmentation_quality.png")),
            gallery(record, out / name("augmentation_gallery.png"))]
