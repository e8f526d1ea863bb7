"""Figures of the 3D volume section: multiplanar views, segmentation analysis, rendering,
the one-page case report and the device-vs-CPU-reference comparison."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import ListedColormap

from common.atomic import save_figure
from common.formatting import fmt_or_na
from common.plots.common import device_label, header, not_available

PLANES = ("axial", "coronal", "sagittal")
SEG_CMAP = ListedColormap([(0, 0, 0, 0), (1.0, 0.55, 0.2, 0.55), (0.2, 0.6, 1.0, 0.55), (0.4, 0.9, 0.3, 0.55)])


def _wl(data, arrays):
    wl = data.get("window_level") or {}
    if wl:
        return wl["level"] - wl["window"] / 2, wl["level"] + wl["window"] / 2
    img = arrays["image_axial"].astype(float)
    return np.percentile(img, 1), np.percentile(img, 99)


def _crosshair(ax, plane, c, shape):
    x, y, z = c
    h = shape[0]
    pos = {"axial": (x, h - 1 - y), "coronal": (x, h - 1 - z), "sagittal": (y, h - 1 - z)}[plane]
    ax.axvline(pos[0], color="#ff0", lw=0.6, alpha=0.7)
    ax.axhline(pos[1], color="#ff0", lw=0.6, alpha=0.7)


def multiplanar(record, arrays, path: Path) -> Path:
    d = record.data
    lo, hi = _wl(d, arrays)
    fig, axes = plt.subplots(1, 3, figsize=(12, 4.6))
    for ax, plane in zip(axes, PLANES):
        img = arrays[f"image_{plane}"].astype(float)
        ax.imshow(img, cmap="gray", vmin=lo, vmax=hi, aspect="equal")
        _crosshair(ax, plane, d["crosshair_voxel"], img.shape)
        ax.set_title(f"{plane}")
        ax.set_xticks([])
        ax.set_yticks([])
    wl = d.get("window_level", {})
    vol = d["volume"]
    fig.text(0.5, 0.02, f"source: {vol['source']}{' (SYNTHETIC)' if d.get('synthetic') else ''} | "
             f"resampled to {d['spacing_mm'][0]} mm, shape {d['prepared_shape']} | window {wl.get('window', 0):.2f} "
             f"level {wl.get('level', 0):.2f} ({wl.get('from', '')}) | crosshair at voxel {d['crosshair_voxel']}",
             ha="center", fontsize=8)
    header(fig, record, "Multiplanar reconstruction (RAS; superior / anterior up; yellow: crosshair)")
    return save_figure(fig, path)


def segmentation(record, arrays, path: Path) -> Path:
    d = record.data
    lo, hi = _wl(d, arrays)
    fig, axes = plt.subplots(3, 4, figsize=(14, 10))
    for row, plane in enumerate(PLANES):
        img = arrays[f"image_{plane}"].astype(float)
        for col, (key, title) in enumerate([("reference", "reference labels"), ("segmentation", "predicted labels"),
                                            ("confidence", "confidence (max prob.)"),
                                            ("entropy", "uncertainty (norm. entropy)")]):
            ax = axes[row, col]
            ax.imshow(img, cmap="gray", vmin=lo, vmax=hi)
            a = arrays[f"{key}_{plane}"]
            if key in ("reference", "segmentation"):
                ax.imshow(a.astype(int), cmap=SEG_CMAP, vmin=0, vmax=3, interpolation="nearest")
            else:
                im = ax.imshow(a.astype(float), cmap="magma" if key == "confidence" else "viridis", vmin=0, vmax=1,
                               alpha=0.85)
                if row == 0:
                    fig.colorbar(im, ax=ax, fraction=0.046)
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(title)
            if col == 0:
                ax.set_ylabel(plane)
    dice = d.get("dice") or {}
    txt = "  ".join(f"Dice {k}: {v:.3f}" if v is not None else f"Dice {k}: n/a" for k, v in dice.items())
    fig.text(0.5, 0.01, f"{txt}   | orange: grey matter, blue: white matter | {d.get('dice_note', '')}",
             ha="center", fontsize=8)
    tr = d.get("training") or {}
    header(fig, record, f"Segmentation analysis: 3D UNet after {tr.get('steps', '?')} training steps "
                        f"({d.get('precision')}), sliding-window inference on the {device_label(record.device)}")
    return save_figure(fig, path)


def rendering(record, arrays, path: Path) -> Path:
    d = record.data
    r = d["render"]
    views = arrays["renders"].astype(float)
    fig, axes = plt.subplots(1, len(views), figsize=(3.2 * len(views), 3.8))
    axes = np.atleast_1d(axes)
    for ax, v, az, s in zip(axes, views, r["azimuths_deg"], r["seconds_per_view"]):
        ax.imshow(np.clip(v, 0, 1))
        ax.set_title(f"azimuth {az:.0f}°: {s * 1e3:.1f} ms")
        ax.set_axis_off()
    header(fig, record, f"Volume rendering computed on {r['device']} (emission-absorption, tissue colours from "
                        f"the predicted segmentation)")
    return save_figure(fig, path)


def medical_report(record, arrays, path: Path) -> Path:
    d = record.data
    lo, hi = _wl(d, arrays)
    fig = plt.figure(figsize=(12, 8.5))
    gs = fig.add_gridspec(3, 4, height_ratios=[1.5, 1.1, 0.55])
    for i, plane in enumerate(PLANES):
        ax = fig.add_subplot(gs[0, i])
        ax.imshow(arrays[f"image_{plane}"].astype(float), cmap="gray", vmin=lo, vmax=hi)
        ax.imshow(arrays[f"segmentation_{plane}"].astype(int), cmap=SEG_CMAP, vmin=0, vmax=3, interpolation="nearest")
        ax.set_title(plane)
        ax.set_axis_off()
    ax = fig.add_subplot(gs[0, 3])
    ax.imshow(np.clip(arrays["renders"][0].astype(float), 0, 1))
    ax.set_title("3D rendering")
    ax.set_axis_off()
    # tissue volumes
    ax = fig.add_subplot(gs[1, :2])
    vols = d.get("tissue_volume_ml") or {}
    names = list(vols)
    x = np.arange(len(names))
    ax.bar(x - 0.2, [vols[n]["predicted"] for n in names], 0.4, label="predicted")
    ax.bar(x + 0.2, [vols[n]["reference"] for n in names], 0.4, label="reference")
    for i, n in enumerate(names):
        ax.text(i - 0.2, vols[n]["predicted"], f"{vols[n]['predicted']:.0f}", ha="center", va="bottom", fontsize=8)
        ax.text(i + 0.2, vols[n]["reference"], f"{vols[n]['reference']:.0f}", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(x, [n.replace("_", " ") for n in names])
    ax.set_ylabel("volume (mL)")
    ax.set_title("Measured tissue volumes")
    ax.legend()
    # timings
    ax = fig.add_subplot(gs[1, 2:])
    t = dict(d.get("preprocess_s") or {})
    tr = d.get("training") or {}
    if tr.get("step_s"):
        t["UNet train step (median)"] = tr["step_s"]["median"]
    if d.get("sliding_window"):
        t["sliding-window inference"] = d["sliding_window"]["seconds"]
    if d.get("render"):
        t["render (per view)"] = float(np.median(d["render"]["seconds_per_view"]))
    ax.barh(list(t), [v * 1e3 for v in t.values()], color="#1f77b4")
    ax.set_xscale("log")
    ax.set_xlabel("ms (log scale)")
    ax.invert_yaxis()
    ax.set_title(f"Pipeline timings on the {device_label(record.device)}")
    for i, v in enumerate(t.values()):
        ax.text(v * 1e3, i, f" {v * 1e3:.1f}", va="center", fontsize=8)
    ax = fig.add_subplot(gs[2, :])
    ax.set_axis_off()
    vol = d["volume"]
    dice = d.get("dice") or {}
    conf = d.get("confidence") or {}
    lines = [
        f"Volume: {vol['source']}{' (SYNTHETIC phantom)' if d.get('synthetic') else ''}, original shape {vol['shape']} "
        f"at {vol['spacing_mm']} mm, analysed at {d['spacing_mm'][0]} mm ({d['prepared_shape']})",
        "Segmentation: " + ", ".join(f"{k.replace('_', ' ')} Dice {v:.3f}" for k, v in dice.items() if v is not None)
        + f"; mean confidence in brain {fmt_or_na(conf.get('mean_in_brain'), '{:.3f}', 'no brain voxel')}; "
        f"{fmt_or_na(_pct(conf.get('low_confidence_fraction')), '{:.1f}%', 'not recorded')} of voxels below 0.6 "
        "confidence",
        f"Model: 3D UNet ({fmt_or_na(_per_million(tr.get('parameters')), '{:.2f} M', 'not recorded')} parameters), "
        f"{tr.get('steps')} steps of "
        f"{tr.get('batch')} patches of {tr.get('patch')}^3, {d.get('precision')}",
        d.get("dice_note", ""),
        "All numbers measured in this run on this machine.",
    ]
    ax.text(0.0, 1.0, "\n".join(lines), va="top", fontsize=9, family="monospace", transform=ax.transAxes)
    header(fig, record, "Case report (demonstration): brain tissue segmentation")
    return save_figure(fig, path)


def _pct(v):
    return None if v is None else 100 * v


def _per_million(v):
    return None if v is None else v / 1e6


def comparison(record, arrays, path: Path) -> Path:
    d = record.data
    ref = d.get("cpu_reference") or {}
    lo, hi = _wl(d, arrays)
    fig, axes = plt.subplots(2, 3, figsize=(12, 8))
    for i, plane in enumerate(PLANES):
        ax = axes[0, i]
        ax.imshow(arrays[f"image_{plane}"].astype(float), cmap="gray", vmin=lo, vmax=hi)
        ax.imshow(arrays[f"segmentation_{plane}"].astype(int), cmap=SEG_CMAP, vmin=0, vmax=3, interpolation="nearest")
        ax.set_title(f"{plane}: {device_label(record.device)} ({d.get('precision')}) segmentation")
        ax.set_axis_off()
        ax = axes[1, i]
        diff = arrays[f"diff_vs_cpu_{plane}"].astype(float)
        vmax = max(float(ref.get("max_abs_prob_diff") or 0), 1e-6)
        im = ax.imshow(diff, cmap="inferno", vmin=0, vmax=vmax)
        ax.set_title(f"{plane}: |prob. difference| vs CPU fp32")
        ax.set_axis_off()
        fig.colorbar(im, ax=ax, fraction=0.046)
    ident = " (identical computation: same device and precision)" if ref.get("identical_computation") else ""
    why = ref.get("reason") or "no CPU reference"
    fig.text(0.5, 0.02, f"max |Δp| = {fmt_or_na(ref.get('max_abs_prob_diff'), '{:.2e}', why)}, mean |Δp| = "
             f"{fmt_or_na(ref.get('mean_abs_prob_diff'), '{:.2e}', why)}, label agreement "
             f"{fmt_or_na(_pct(ref.get('label_agreement')), '{:.3f}%', why)}{ident} | device inference "
             f"{d['sliding_window']['seconds']:.3f} s vs CPU fp32 reference "
             f"{fmt_or_na(ref.get('seconds'), '{:.3f} s', why)}",
             ha="center", fontsize=9)
    header(fig, record, "Device output against the CPU fp32 reference (same trained 3D UNet, same volume)")
    return save_figure(fig, path)


def plot(record, arrays, out: Path, name: Callable[[str], str]) -> list[Path]:
    d = record.data
    if arrays is None or d.get("training") is None:
        fig, ax = plt.subplots(figsize=(8, 3))
        not_available(ax, d.get("training_reason") or "no arrays were saved for this record")
        return [save_figure(fig, out / name("enhanced_multiplanar.png"))]
    return [
        multiplanar(record, arrays, out / name("enhanced_multiplanar.png")),
        segmentation(record, arrays, out / name("segmentation_analysis.png")),
        rendering(record, arrays, out / name("3d_rendering.png")),
        medical_report(record, arrays, out / name("demo_medical_report_visualization.png")),
        comparison(record, arrays, out / name("demo_comparison_visualization.png")),
    ]
