"""The step-breakdown figure (benchmarks/step_breakdown.py): where each variant's step time
goes by kernel family, and what each variant costs in images/s and joules per image."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from common.atomic import save_figure
from common.formatting import fmt_or_na
from common.plots.common import bars_or_missing, fmt_rate, not_available

FAMILY_COLORS = {
    "convolution (cuDNN)": "#1f77b4", "inductor pointwise": "#ff7f0e", "inductor reduction": "#d62728",
    "elementwise (ATen)": "#bcbd22", "matrix product (cuBLAS)": "#9467bd",
    "matrix product (inductor template)": "#8c564b",
    "batch norm (cuDNN/ATen)": "#e377c2", "optimizer (Adam)": "#2ca02c", "reduction (ATen)": "#17becf",
    "memcpy/memset": "#7f7f7f", "other": "#c7c7c7",
}


def plot(res: dict[str, Any], path: Path) -> Path:
    vs = res["variants"]
    names = [v["name"] for v in vs]
    y = np.arange(len(vs))
    fig, axes = plt.subplots(1, 3, figsize=(17, 0.6 * len(vs) + 4.0), sharey=True,
                             gridspec_kw={"width_ratios": [2.4, 1, 1]})
    ax = axes[0]
    families = list(FAMILY_COLORS)
    traced = [v["profile"]["total_us"] > 0 for v in vs]
    if any(traced):
        left = np.zeros(len(vs))
        for fam in families:
            ms = np.array([v["profile"]["families"].get(fam, {}).get("us", 0.0) / v["profile"]["steps"]
                           / v["levers"]["batch_size"] for v in vs])
            if ms.any():
                ax.barh(y, ms, left=left, color=FAMILY_COLORS[fam], label=fam)
                left += ms
        wall = [1e6 / v["images_per_s"]["median"] for v in vs]
        ax.scatter(wall, y, marker="|", s=400, color="k", zorder=3, label="measured wall time")
        ax.set_xlabel("µs of device time per training image (kernel time by family; black tick: measured)")
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=4)
        ax.set_xlim(0, max(max(wall), left.max()) * 1.25)
    else:
        not_available(ax, next((v["profile"].get("reason") for v in vs), None))
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    ax.set_title("Where the training step's device time goes, per image")
    ax = axes[1]
    rate = [v["images_per_s"]["median"] for v in vs]
    ax.barh(y, rate, color="#76b900")
    for i, v in enumerate(vs):
        acc = (v.get("accuracy") or {}).get("test_accuracy")
        ax.text(rate[i], i, f" {fmt_rate(rate[i])}" + (f"\n test acc {100 * acc:.2f}%" if acc is not None else ""),
                va="center", fontsize=8)
    ax.set_xlim(0, max(rate) * 1.5)
    ax.set_title("Training images/s, end to end")
    ax = axes[2]
    j = [v.get("gpu_j_per_image") for v in vs]
    if any(x is not None for x in j):
        bars_or_missing(ax, y, j, [v.get("gpu_energy_reason") or v.get("energy_reason") for v in vs],
                        horizontal=True, color="#555")
        for i, v in enumerate(vs):
            w = v.get("gpu_avg_power_w")
            if j[i] is not None:
                ax.text(j[i], i, f" {j[i]:.4f} J\n {fmt_or_na(w, '{:.0f} W', 'no power')}", va="center", fontsize=8)
        ax.set_xlim(0, max(x for x in j if x is not None) * 1.5)
        idle = (res.get("idle_power") or {}).get("power_w")
        ax.set_title("Board energy per image\n" + (f"(idle board power {idle:.0f} W)" if idle else ""))
    else:
        not_available(ax, "no GPU energy counter in this run")
    env = res.get("environment") or {}
    gpu = ((env.get("gpu") or {}).get("devices") or [{}])[0].get("name") or res.get("device", "")
    fig.suptitle(f"Step breakdown: {gpu} | {env.get('time_utc', '')} | base: {vs[0]['label']}", fontsize=10)
    return save_figure(fig, path)
