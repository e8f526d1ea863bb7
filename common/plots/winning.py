"""The winning-solution figure: the optimization ladder, lever by lever."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from common.atomic import save_figure
from common.plots.common import DEVICE_COLORS, device_label, errbar, fmt_rate, header, not_available

# the targets the winner is held to (issue 7), drawn as red dashed lines
EFFICIENCY_TARGET = 0.95
GPU_J_PER_IMAGE_TARGET = 0.01


def ladder(record, path: Path) -> Path:
    d = record.data
    rungs = d["rungs"]
    summ = d["summary"]
    win = summ["winner_index"]
    names = [f"{i}. {r['name']}" for i, r in enumerate(rungs)]
    y = np.arange(len(rungs))
    col = [("#d4a017" if i == win else DEVICE_COLORS[record.device]) for i in range(len(rungs))]
    fig, axes = plt.subplots(1, 5, figsize=(20, 0.55 * len(rungs) + 3), sharey=True,
                             gridspec_kw={"width_ratios": [2.2, 1, 1, 1, 1]})
    ax = axes[0]
    m, e = zip(*[errbar(r["images_per_s"]) for r in rungs])
    ax.barh(y, m, xerr=np.array(e).T, color=col, capsize=2)
    ceil = [r["model_only_images_per_s"]["median"] for r in rungs]
    ax.scatter(ceil, y, marker="|", s=300, color="k", label="model-only ceiling", zorder=3)
    for i, r in enumerate(rungs):
        sp = r["speedup_vs_recipe"]
        right = max(m[i] + e[i][1], ceil[i])  # past the error bar and the ceiling tick, not over them
        ax.text(right, i, f"  {fmt_rate(m[i])} img/s  {sp['value']:.1f}x [{sp['ci95'][0]:.1f}-{sp['ci95'][1]:.1f}]",
                va="center", fontsize=8)
    ax.set_yticks(y, names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, max(max(m), max(ceil)) * 1.45)
    ax.set_xlabel("training images/s, end to end (95% CI; black tick: model-only ceiling)")
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title("Throughput and speedup over the recipe")
    ax = axes[1]
    eff = [r["pipeline_efficiency"] for r in rungs]
    ax.barh(y, eff, color=col)
    ax.axvline(EFFICIENCY_TARGET, color="#d62728", ls="--", lw=1)
    for i, v in enumerate(eff):
        ax.text(v, i, f" {v:.2f}", va="center", fontsize=8)
    ax.set_xlim(0, 1.15)
    ax.set_title(f"Pipeline efficiency (end to end /\nmodel-only; red: target {EFFICIENCY_TARGET:g})")
    ax = axes[2]
    key = "gpu_j_per_image" if record.device == "cuda" else "cpu_j_per_image"
    jpi = [r.get(key) for r in rungs]
    if any(v is not None for v in jpi):
        ax.barh(y, [v or 0 for v in jpi], color=col)
        for i, v in enumerate(jpi):
            ax.text(v or 0, i, f" {v:.4f}" if v is not None else " n/a", va="center", fontsize=8)
        ax.set_xlim(0, max(v for v in jpi if v is not None) * 1.35)
        title = "Energy (J/image,\nenergy counter)"
        if record.device == "cuda":
            ax.axvline(GPU_J_PER_IMAGE_TARGET, color="#d62728", ls="--", lw=1)
            title = f"Energy (J/image, energy counter;\nred: target {GPU_J_PER_IMAGE_TARGET:g})"
        ax.set_title(title)
    else:
        not_available(ax, rungs[0].get("energy_reason"))
    ax = axes[3]
    acc = [100 * r["accuracy"]["test_accuracy"] for r in rungs]
    gated = summ.get("gate_applied", True)
    ax.barh(y, acc, color=[("#2ca02c" if r["meets_accuracy_gate"] else "#d62728") if gated else "#7f7f7f"
                           for r in rungs])
    if gated:
        ax.axvline(100 * summ["accuracy_gate"], color="k", ls="--", lw=1, label="gate")
    for i, v in enumerate(acc):
        ax.text(v, i, f" {v:.2f}%", va="center", fontsize=8)
    lo = max(0.0, min(acc) - 5)
    ax.set_xlim(lo, 100.5 + (100 - lo) * 0.25)
    ax.set_title(f"Test accuracy after {d['epochs']} epochs\n" + ("(green: within the gate)" if gated
                                                               else "(grey: gate not applied, see below)"))
    ax = axes[4]
    util = [r.get("gpu_util_pct") if record.device == "cuda" else r.get("cpu_util_pct") for r in rungs]
    mfu = [r.get("mfu") for r in rungs]
    ax.barh(y - 0.2, [u or 0 for u in util], 0.4, color="#7f7f7f", label=f"{device_label(record.device)} util %")
    ax.barh(y + 0.2, [100 * (v or 0) for v in mfu], 0.4, color="#9467bd", label="MFU %")
    for i in range(len(rungs)):
        ax.text(util[i] or 0, i - 0.2, f" {util[i]:.0f}%" if util[i] is not None else " n/a", va="center", fontsize=7)
        ax.text(100 * (mfu[i] or 0), i + 0.2, f" {100 * mfu[i]:.1f}%" if mfu[i] is not None else " n/a",
                va="center", fontsize=7)
    ax.set_xlim(0, 115)
    ax.legend(fontsize=7, loc="lower right")
    peak = d["matmul_peak"]
    ax.set_title(f"Utilization and MFU\n(vs measured {peak['dtype']} matmul {peak['flops_per_s'] / 1e12:.0f} TFLOP/s)")
    w = rungs[win]
    tta, tta_warm = summ.get("time_to_accuracy_ratio"), w.get("time_to_accuracy_ratio_warm")
    text = (f"Winner: {w['name']} ({w['label']}): {fmt_rate(w['images_per_s']['median'])} img/s, "
            f"{summ['speedup']['value']:.1f}x the MONAI tutorial recipe "
            f"[{summ['speedup']['ci95'][0]:.1f}-{summ['speedup']['ci95'][1]:.1f}], test accuracy "
            f"{100 * w['accuracy']['test_accuracy']:.2f}% vs recipe {100 * summ['recipe_test_accuracy']:.2f}%"
            + (f", reaches {100 * d['rungs'][0]['accuracy']['target_val_accuracy']:.0f}% val. accuracy "
               f"{tta:.2g}x as fast as the recipe with its one-time compilation and capture"
               + (f", {tta_warm:.2g}x without" if tta_warm else "") if tta else "")
            + f". {d['train_images']} training images, {d['train_flops_per_image'] / 1e9:.2f} GFLOP/image/step.")
    fig.text(0.5, -0.02, text, ha="center", fontsize=9, wrap=True)
    if summ.get("gate_reason"):
        fig.text(0.5, -0.08, f"Accuracy gate {summ['gate_reason']}.", ha="center", fontsize=9, color="#c00")
    if d.get("notes"):
        fig.text(0.5, -0.05, "; ".join(d["notes"]), ha="center", fontsize=8, color="#555")
    header(fig, record, f"Winning solution: the optimization ladder on the {device_label(record.device)} "
                        f"(gold: winner; one lever per rung)")
    return save_figure(fig, path)


def plot(record, arrays, out: Path, name: Callable[[str], str]) -> list[Path]:
    return [ladder(record, out / name("winning_solution_analysis.png"))]
