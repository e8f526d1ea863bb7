"""Figures of the inference ladder (performance_analysis/): the latency ladder (batch-1 p50 and
p99 per rung, end to end from a JPEG beside model-only, agreement with eager fp32) and the
throughput-latency curve of every rung with the latency budget."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from common.atomic import save_figure
from common.plots.common import device_label, fmt_rate, header, not_available


def _status(r: dict) -> str:
    if r["status"] != "ok":
        return f"{r['status']}: {r.get('reason', '')}"[:70]
    a = r["agreement"]
    tag = "" if a["passed"] else "  REFUSED: predictions differ"
    return f"agree {100 * a['top1_agreement']:.2f}%, max|dlogit| {a['max_abs_logit_diff']:.2g}{tag}"


def latency_ladder(record, path: Path) -> Path:
    lad = record.data.get("inference_ladder")
    fig, ax = plt.subplots(figsize=(13, 1.5 + 0.55 * max(1, len(lad["rungs"]) if lad else 1)))
    if not lad:
        not_available(ax, record.data.get("inference_ladder_reason", "no inference ladder in this record"))
        header(fig, record, "Inference ladder")
        return save_figure(fig, path)
    rungs = lad["rungs"][::-1]  # first rung at the top
    y = np.arange(len(rungs))
    p50 = [r["latency"]["p50_ms"] if r["status"] == "ok" else 0 for r in rungs]
    p99 = [r["latency"]["p99_ms"] if r["status"] == "ok" else 0 for r in rungs]
    e2e = [r.get("end_to_end", {}).get("p50_ms", 0) if r["status"] == "ok" else 0 for r in rungs]
    ax.barh(y + 0.27, p99, 0.27, color="#f4a582", label="model p99")
    ax.barh(y, p50, 0.27, color="#2166ac", label="model p50")
    if any(e2e):
        ax.barh(y - 0.27, e2e, 0.27, color="#7fbf7b", label="end to end from JPEG, p50")
    win = (lad.get("latency_winner") or {}).get("name")
    top = max(p99 + e2e + [1e-3])
    for i, r in enumerate(rungs):
        extra = ""
        if r["status"] == "ok":
            extra = f"{r['latency']['p50_ms']:.3g} / {r['latency']['p99_ms']:.3g} ms"
            if r.get("speedup_p50_vs_eager"):
                extra += f" ({r['speedup_p50_vs_eager']:.2f}x)"
            if r.get("one_time_s", 0) > 1:
                extra += f", one-time {r['one_time_s']:.0f} s"
        ax.text(top * 1.02, y[i], f"{extra}  {_status(r)}", va="center", fontsize=7,
                color="#b2182b" if r["status"] == "ok" and not r["agreement"]["passed"] else "black")
    ax.set_yticks(y, [("* " if r["name"] == win else "") + f"{r['name']}" for r in rungs], fontsize=8)
    ax.set_xlim(0, top * 2.1)
    ax.set_xlabel("ms per request, batch 1 (synchronized)")
    ax.legend(loc="lower right", fontsize=7)
    w = lad.get("latency_winner")
    ax.set_title(f"Latency winner (*): {w['name']}, p50 {w['p50_ms']:.3g} ms ({w['speedup_p50_vs_eager']:.2f}x eager "
                 f"fp32)" if w else f"No latency winner: {lad.get('latency_winner_reason')}", fontsize=9)
    header(fig, record, f"Inference ladder on the {device_label(record.device)}: batch-1 latency per rung "
                        f"(agreement with eager fp32 needed: {lad['config']['min_agreement']:g})")
    return save_figure(fig, path)


def throughput_curve(record, path: Path) -> Path:
    lad = record.data.get("inference_ladder")
    fig, ax = plt.subplots(figsize=(10, 5.5))
    if not lad:
        not_available(ax, record.data.get("inference_ladder_reason", "no inference ladder in this record"))
        header(fig, record, "Inference throughput and latency")
        return save_figure(fig, path)
    budget = lad["config"]["budget_ms"]
    cmap = plt.get_cmap("tab10")
    for i, r in enumerate(x for x in lad["rungs"] if x["status"] == "ok" and x.get("curve")):
        rows = [p for p in r["curve"] if not p.get("error")]
        style = "-" if r["agreement"]["passed"] else ":"
        ax.plot([p["p99_ms"] for p in rows], [p["images_per_s_median"] for p in rows], style, marker="o",
                color=cmap(i % 10), label=r["name"] + ("" if r["agreement"]["passed"] else " (refused)"))
        for p in rows:
            ax.annotate(f"b{p['batch_size']}", (p["p99_ms"], p["images_per_s_median"]), fontsize=6,
                        textcoords="offset points", xytext=(3, -8))
    ax.axvline(budget, color="#b2182b", ls="--", lw=1.2, label=f"budget {budget:g} ms (p99)")
    tw = lad.get("throughput_winner")
    if tw:
        ax.plot([tw["p99_ms"]], [tw["images_per_s"]], "*", ms=16, color="#b2182b", zorder=5)
        title = (f"Throughput winner within {budget:g} ms: {tw['name']}, batch {tw['batch_size']}: "
                 f"{fmt_rate(tw['images_per_s'])} img/s (p99 {tw['p99_ms']:.3g} ms)")
    else:
        title = f"No throughput winner: {lad.get('throughput_winner_reason')}"
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("p99 latency of one batch call (ms, log)")
    ax.set_ylabel("images/s (batch / median call, log)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="best")
    ax.grid(alpha=0.3, which="both")
    header(fig, record, f"Inference throughput vs latency on the {device_label(record.device)} "
                        f"(one point per batch size)")
    return save_figure(fig, path)
