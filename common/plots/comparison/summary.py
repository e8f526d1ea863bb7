"""reports/ and metrics/: the headline speedups and the overview of the two runs."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt

from common.atomic import save_figure
from common.comparison import BEST_VS_BEST, LIKE_FOR_LIKE
from common.plots.comparison.base import forest, header, wrap


def headline_figure(rec, path: Path) -> Path:
    d = rec.data
    head = d.get("headline_speedups") or []
    text = "\n".join(wrap(f"• {v['text']}", 200) for v in d.get("verdicts") or [])
    text_in = 0.17 * (text.count("\n") + 1) + 0.3
    plot_in = 0.38 * len(head) + 1.4
    h = 1.3 + plot_in + text_in
    fig = plt.figure(figsize=(17, h))
    ax = fig.add_axes([0.22, (text_in + 0.7) / h, 0.72, (plot_in - 0.9) / h])
    forest(ax, head, "Headline speedups (GPU run over CPU run) with window ranges")
    fig.text(0.02, (text_in - 0.1) / h, text, va="top", fontsize=8.5)
    header(fig, rec, "GPU vs CPU comparison: the verdicts")
    return save_figure(fig, path)


def overview_figure(rec, path: Path) -> Path:
    d = rec.data
    g, c = d["machines"]["gpu"], d["machines"]["cpu"]
    rows = [("GPU", "gpu_name"), ("GPU memory (MiB)", "gpu_memory_mib"), ("driver", "driver"),
            ("host", "hostname"), ("CPU model", "cpu_model"), ("physical cores", "physical_cores"),
            ("threads used", "threads_used"), ("date (UTC)", "time_utc"), ("torch", "torch"), ("MONAI", "monai"),
            ("git commit", "git_commit"), ("uncommitted changes", "git_dirty"), ("quick mode", "quick"),
            ("recipe batch size", "batch_size"), ("data", "dataset_source"), ("images", "dataset_images"),
            ("synthetic data", "synthetic")]

    def f(v):
        if v is None:
            return "n/a"
        if isinstance(v, float):
            return f"{v:.0f}"
        return str(v)[:44]

    notes = d.get("notes") or []
    counts = d.get("counts") or {}
    note_text = ("Notes\n" + "\n".join(wrap("• " + n, 160) for n in notes)
                 + f"\n\n{counts.get(LIKE_FOR_LIKE, 0)} like-for-like and {counts.get(BEST_VS_BEST, 0)} best-vs-best "
                   "comparisons; the input record files are listed in gpu_cpu_comparison_summary.json.")
    note_in = 0.17 * (note_text.count("\n") + 1) + 0.3
    h = 1.3 + 0.27 * (len(rows) + 1) + note_in
    fig = plt.figure(figsize=(14, h))
    ax = fig.add_axes([0.17, (note_in + 0.1) / h, 0.8, 0.27 * (len(rows) + 1) / h])
    ax.set_axis_off()
    tab = ax.table(cellText=[[f(g.get(k)), f(c.get(k))] for _, k in rows], rowLabels=[r for r, _ in rows],
                   colLabels=["GPU run", "CPU run"], bbox=[0, 0, 1, 1], cellLoc="left")
    tab.auto_set_font_size(False)
    tab.set_fontsize(8.5)
    fig.text(0.03, note_in / h, note_text, va="top", fontsize=8.5)
    header(fig, rec, "The two runs compared (from their records' environments)")
    return save_figure(fig, path)
