"""augmentation_comparison/ and pipeline_comparison/: the augmentation chain and its quality; the
pipeline stage by stage with each stage's Amdahl cap."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Patch

from common.atomic import save_figure
from common.comparison.text import fmt_x
from common.plots.common import not_available
from common.plots.comparison.base import CPU_C, GPU_C, forest, header, top, wrap


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
           "window ranges)", reason=d.get("reason"))
    _quality_table(fig.add_subplot(gs[1, 0]), g, c, q.get("verdicts", []))
    header(fig, rec, "GPU vs CPU augmentation: per-transform speed and quality of the MONAI tutorial chain")
    return save_figure(fig, path)


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
    forest(axes[1], ents, "Speedups (like-for-like, window ranges)", label_width=40, show_kind=False)
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
