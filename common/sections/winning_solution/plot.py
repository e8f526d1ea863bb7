"""The winning-solution figure: the ladder ranked by time to the target accuracy, cold and
warm, with throughput, energy and accuracy per seed beside it, and the trade-off between
time to target and energy per image (the Pareto front)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from common.atomic import save_figure
from common.plots.common import DEVICE_COLORS, device_label, fmt_rate, header, not_available

WINNER = "#d4a017"
FAIL = "#bbbbbb"


def _spread(t: dict | None) -> tuple[float, list[float]]:
    if not t:
        return 0.0, [0.0, 0.0]
    return t["median"], [t["median"] - t["min"], t["max"] - t["median"]]


def _time_panel(ax, rungs, win, colors, y, record) -> None:
    cold = [r["time_to_target"].get("cold") for r in rungs]
    warm = [r["time_to_target"].get("warm") for r in rungs]
    if not any(cold + warm):  # nothing to draw on a log axis: say why instead
        t = rungs[0]["time_to_target"] if rungs else {}
        not_available(ax, "no rung reached the target: " + (t.get("cold_reason") or "not run"))
        return
    for vals, dy, alpha, label in ((cold, -0.2, 1.0, "cold (empty caches)"), (warm, 0.2, 0.45, "warm (second run)")):
        m, e = zip(*[_spread(v) for v in vals])
        ax.barh(y + dy, m, 0.38, xerr=np.array(e).T, color=colors, alpha=alpha, capsize=2, label=label,
                hatch=None if alpha == 1.0 else "//")
        for i, v in enumerate(vals):
            ratio = rungs[i].get(f"time_to_target_ratio_{'cold' if dy < 0 else 'warm'}")
            txt = (f" {v['median']:.1f} s" + (f"  {ratio:.1f}x" if ratio and i else "")) if v else \
                f" n/a: {rungs[i]['time_to_target'].get(('cold' if dy < 0 else 'warm') + '_reason') or 'not run'}"
            ax.text(v["max"] if v else 0, i + dy, txt, va="center", fontsize=7)
    ax.set_xscale("log")
    finite = [v["max"] for v in cold + warm if v]
    if finite:
        ax.set_xlim(min(v["min"] for v in cold + warm if v) * 0.5, max(finite) * 6)
    ax.set_xlabel("seconds from the rung's start to the target validation accuracy (log; bar: median over seeds, "
                  "whisker: range)")
    ax.legend(fontsize=7, loc="lower right")
    target = record.data.get("spec", {}).get("target")
    ax.set_title(f"Time to {100 * target:.0f}% validation accuracy, every one-time cost counted\n"
                 "(x: times sooner than the recipe)" if target else "Time to target")


def _throughput_panel(ax, rungs, colors, y, lead) -> None:
    rates = [r["images_per_s"]["median"] if r.get("images_per_s") else None for r in rungs]
    if not any(rates):
        not_available(ax, "no throughput measured")
        return
    ax.barh(y, [v or 0 for v in rates], color=colors)
    for i, v in enumerate(rates):
        sp = (rungs[i].get("speedup_vs_recipe") or {}).get("value")
        label = f" {fmt_rate(v)}" + (f" {sp:.1f}x" if sp and i else "") + (" (leader)" if i == lead else "")
        ax.text(v or 0, i, label if v else " n/a", va="center", fontsize=7)
    ax.set_xlim(0, max(v for v in rates if v) * 1.7)
    ax.set_title("Training images/s, sustained\n(reported, never crowned)")


def _energy_panel(ax, rungs, colors, y, device) -> None:
    key = "gpu_j_per_image" if device == "cuda" else "cpu_j_per_image"
    j = [r.get(key) for r in rungs]
    if not any(v is not None for v in j):
        not_available(ax, rungs[0].get("energy_reason") or "no energy counter on this machine")
        return
    ax.barh(y, [v or 0 for v in j], color=colors)
    for i, v in enumerate(j):
        ax.text(v or 0, i, f" {v:.4f}" if v is not None else f" n/a: {rungs[i].get('energy_reason') or 'not measured'}",
                va="center", fontsize=7)
    ax.set_xlim(0, max(v for v in j if v is not None) * 1.6)
    ax.set_title("Energy per image (J, board counter,\nsustained window)")


def _accuracy_panel(ax, rungs, y, summ) -> None:
    allv = []
    for i, r in enumerate(rungs):
        accs = [a for a in r["time_to_target"]["test_accuracy_per_seed"].values() if a is not None]
        allv += accs
        col = "#2ca02c" if r.get("passes_gate") else "#d62728"
        ax.scatter([100 * a for a in accs], [i] * len(accs), color=col, s=18, zorder=3)
        if not r.get("passes_gate"):
            ax.text(100.02, i, " fails: " + (r.get("gate_reason") or "")[:48], va="center", fontsize=6, color="#c00")
    if summ.get("accuracy_gate") is not None:
        ax.axvline(100 * summ["accuracy_gate"], color="k", ls="--", lw=1, label="gate")
        ax.legend(fontsize=7, loc="lower left")
    lo = min(allv + [summ.get("accuracy_gate") or 1]) * 100 - 0.5 if allv else 90
    ax.set_xlim(lo, 100 + (100 - lo) * 1.2)
    ax.set_title("Test accuracy, one dot per seed\n(green: passes the gate on every seed)")


def _pareto_panel(ax, rungs, win, device) -> None:
    key = "gpu_j_per_image" if device == "cuda" else "cpu_j_per_image"
    pts = [(i, r["time_to_target"]["cold"]["median"], r.get(key)) for i, r in enumerate(rungs)
           if r["time_to_target"].get("cold") and r.get(key) is not None]
    if not pts:
        not_available(ax, "needs both a cold time to target and an energy counter reading per rung")
        return
    for i, t, j in pts:
        ax.scatter(t, j, s=60 if i == win else 30, color=WINNER if i == win else
                   (DEVICE_COLORS[device] if rungs[i].get("passes_gate") else FAIL), edgecolor="k", zorder=3)
        ax.annotate(f"{i}", (t, j), textcoords="offset points", xytext=(5, 3), fontsize=8)
    front, best_j = [], float("inf")
    for _i, t, j in sorted(pts, key=lambda p: p[1]):
        if j < best_j:
            front.append((t, j))
            best_j = j
    ax.step([p[0] for p in front], [p[1] for p in front], where="post", color="k", lw=1, ls=":",
            label="Pareto front (no rung both sooner and cheaper)")
    ax.set_xscale("log")
    ax.set_xlabel("cold time to target (s, median over seeds; log)")
    ax.set_ylabel("J/image")
    ax.legend(fontsize=7)
    ax.set_title("Time to target against energy per image\n(numbers: rung; gold: winner; grey: fails the gate)")


def ladder(record, path: Path) -> Path:
    d = record.data
    rungs, summ = d["rungs"], d["summary"]
    win = summ["winner_index"] if summ.get("crowned", True) else None
    lead = summ.get("throughput_leader_index")
    y = np.arange(len(rungs))
    colors = [WINNER if i == win else (DEVICE_COLORS[record.device] if r.get("passes_gate") else FAIL)
              for i, r in enumerate(rungs)]
    fig = plt.figure(figsize=(22, 0.6 * len(rungs) + 8))
    gs = fig.add_gridspec(2, 4, height_ratios=[0.6 * len(rungs) + 2, 4.5], width_ratios=[2.4, 1, 1, 1.4])
    axes = [fig.add_subplot(gs[0, 0])]
    axes += [fig.add_subplot(gs[0, k], sharey=axes[0]) for k in (1, 2, 3)]
    _time_panel(axes[0], rungs, win, colors, y, record)
    axes[0].set_yticks(y, [f"{i}. {r['name']}" for i, r in enumerate(rungs)], fontsize=8)
    axes[0].invert_yaxis()
    _throughput_panel(axes[1], rungs, colors, y, lead)
    _energy_panel(axes[2], rungs, colors, y, record.device)
    _accuracy_panel(axes[3], rungs, y, summ)
    for ax in axes[1:]:
        ax.tick_params(labelleft=False)
    _pareto_panel(fig.add_subplot(gs[1, 0:2]), rungs, win, record.device)
    ax = fig.add_subplot(gs[1, 2:])
    ax.axis("off")
    ax.text(0, 1, _caption(d, summ, win, lead), va="top", fontsize=9, wrap=True)
    header(fig, record, f"Winning solution on the {device_label(record.device)}: who reaches a trained model "
                        "soonest (gold: winner; grey: fails the gate)")
    return save_figure(fig, path)


def _caption(d, summ, win, lead) -> str:
    rungs = d["rungs"]
    seeds = ", ".join(str(s) for s in summ.get("seeds", []))
    lines = [f"Winner: {rungs[win]['name']} ({rungs[win]['label']})." if win is not None else
             "No rung passed the gate on every seed: nothing is crowned.",
             f"Rule: {summ['winner_rule']}.",
             f"Gate: target validation accuracy reached and test accuracy >= {100 * summ['accuracy_gate']:.2f}% "
             f"(the recipe's lowest seed - {100 * summ['tolerance']:.1f} points) on every seed ({seeds})."
             if summ.get("accuracy_gate") is not None else "Gate: not applied (the recipe has no test accuracy).",
             ]
    if lead is not None:
        sp = (rungs[lead].get("speedup_vs_recipe") or {}).get("value")
        lines.append(f"Throughput leader: {rungs[lead]['name']} "
                     f"({fmt_rate(rungs[lead]['images_per_s']['median'])} img/s" + (f", {sp:.1f}x the recipe" if sp
                                                                                     else "") + ").")
    lines.append(f"{d.get('train_images')} training images; epoch budget {d.get('epochs')}; cold: empty caches, "
                 "warm: a second process reusing the decoded data and compile caches.")
    if d.get("notes"):
        lines.append("Notes: " + "; ".join(d["notes"]))
    return "\n".join(lines)


def plot(record, arrays, out: Path, name: Callable[[str], str]) -> list[Path]:
    return [ladder(record, out / name("winning_solution_analysis.png"))]
