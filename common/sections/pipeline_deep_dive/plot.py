"""Figures of the pipeline deep dive."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from common.analysis.interpret import interpret
from common.atomic import save_figure
from common.plots.common import STAGE_COLORS, bars_or_missing, device_label, errbar, errbar_note, fmt_rate, header

TITLES = {"tutorial_recipe": "MONAI tutorial recipe", "device_resident": "device-resident pipeline"}


def breakdown(record, path: Path) -> Path:
    cfgs = record.data["configs"]
    keys = list(cfgs)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.8), gridspec_kw={"width_ratios": [1.6, 1, 1]})
    ax = axes[0]
    for i, k in enumerate(keys):
        c = cfgs[k]
        left = 0.0
        for stage, s in c["stages_s"].items():
            w = s["median"] * 1e3
            ax.barh(i, w, left=left, color=STAGE_COLORS.get(stage, "#999"), edgecolor="white",
                    label=stage if i == 0 or stage not in cfgs[keys[0]]["stages_s"] else None)
            if w > 0.06 * c["step_wall_s"]["median"] * 1e3:
                ax.text(left + w / 2, i, f"{stage}\n{100 * c['share'][stage]:.0f}%", ha="center", va="center",
                        fontsize=7, color="white")
            left += w
        ax.plot([c["step_wall_s"]["median"] * 1e3] * 2, [i - 0.4, i + 0.4], color="k", lw=2)
    ax.set_yticks(range(len(keys)), [f"{TITLES.get(k, k)}\n{cfgs[k]['label']}" for k in keys], fontsize=8)
    ax.set_xlabel("ms per step (median; black tick: whole step's wall time)")
    ax.set_title("Stage breakdown (each stage synchronized)")
    ax.set_ylim(-0.6, len(keys) - 0.4 + 0.6)
    ax.legend(fontsize=7, ncol=5, loc="upper center", bbox_to_anchor=(0.5, -0.12))
    ax = axes[1]
    x = np.arange(len(keys))
    e2e = [errbar(cfgs[k]["end_to_end_images_per_s"]) for k in keys]
    ceil = [errbar(cfgs[k]["model_only_images_per_s"]) for k in keys]
    ax.bar(x - 0.2, [m for m, _ in e2e], 0.4, yerr=np.array([e for _, e in e2e]).T, label="end to end", capsize=2)
    ax.bar(x + 0.2, [m for m, _ in ceil], 0.4, yerr=np.array([e for _, e in ceil]).T, label="model-only ceiling",
           capsize=2, color="#aaa")
    for i, k in enumerate(keys):
        ax.text(i - 0.2, e2e[i][0], f"{fmt_rate(e2e[i][0])}\n{100 * cfgs[k]['pipeline_efficiency']:.0f}%",
                ha="center", va="bottom", fontsize=8)
    ax.set_xticks(x, [TITLES.get(k, k) for k in keys], fontsize=8)
    notes = [cfgs[k][f] for k in keys for f in ("end_to_end_images_per_s", "model_only_images_per_s")]
    ax.set_ylabel(f"training images/s ({errbar_note(notes)})", fontsize=8)
    ax.set_title("Data stall: end to end vs model-only")
    ax.legend(fontsize=8)
    ax = axes[2]
    it = {k: interpret(cfgs[k]) for k in keys}
    a1 = [it[k]["speedup_if_data_free"] for k in keys]
    a2 = [it[k]["speedup_if_model_free"] for k in keys]
    ax.set_yscale("log")
    bars_or_missing(ax, x - 0.2, a1, ["no end-to-end rate"] * len(keys), 0.4, color="#ff7f0e",
                    label="if data cost nothing (model-only ceiling / end to end)")
    bars_or_missing(ax, x + 0.2, a2, ["no data stage in the step"] * len(keys), 0.4, color="#1f77b4",
                    label="if the model cost nothing (step / data stages)")
    for i in range(len(keys)):
        if a1[i] is not None:
            ax.text(i - 0.2, a1[i], f"{a1[i]:.2f}x", ha="center", va="bottom", fontsize=8)
        if a2[i] is not None:
            ax.text(i + 0.2, a2[i], f"{a2[i]:.1f}x", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(x, [TITLES.get(k, k) for k in keys], fontsize=8)
    ax.set_title("Amdahl bound on the step's speedup")
    ax.legend(fontsize=7)
    bott = "; ".join(f"{TITLES.get(k, k)}: bottleneck {it[k]['bottleneck']} ({it[k]['why']}), data stall "
                     f"{100 * it[k]['data_stall_fraction']:.0f}%" for k in keys)
    fig.text(0.5, -0.02, bott, ha="center", fontsize=9)
    header(fig, record, f"Pipeline deep dive on the {device_label(record.device)}: where a training step's time goes")
    return save_figure(fig, path)


def workers(record, path: Path) -> Path:
    cfgs = record.data["configs"]
    fig, ax = plt.subplots(figsize=(8, 4))
    shown = False
    for i, c in enumerate(cfgs.values()):
        w = c.get("worker_cpu_s_per_batch") or {}
        if not w:
            continue
        shown = True
        left = 0.0
        for stage, secs in w.items():
            ax.barh(i, secs * 1e3, left=left, color=STAGE_COLORS.get(stage, "#999"), label=stage)
            ax.text(left + secs * 500, i, f"{stage}\n{secs * 1e3:.0f} ms", ha="center", va="center", fontsize=7)
            left += secs * 1e3
    if not shown:
        ax.text(0.5, 0.5, "no per-sample CPU stages in these configurations", ha="center", transform=ax.transAxes)
    ax.set_yticks(range(len(cfgs)), [TITLES.get(k, k) for k in cfgs])
    ax.set_xlabel("CPU milliseconds per batch spent in transforms (summed over samples, in workers or in-process)")
    header(fig, record, "Per-sample transform work behind each batch")
    return save_figure(fig, path)


def plot(record, arrays, out: Path, name: Callable[[str], str]) -> list[Path]:
    return [breakdown(record, out / name("pipeline_stage_breakdown.png")),
            workers(record, out / name("pipeline_worker_stages.png"))]
