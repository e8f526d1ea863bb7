"""Shared figure helpers: style, 'not available' panels, missing-value marks, interval notes,
status and run-overview figures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from common.atomic import save_figure  # noqa: E402

DEVICE_COLORS = {"cuda": "#76b900", "cpu": "#1f77b4"}
STAGE_COLORS = {
    "io_decode": "#8c564b", "preprocess": "#e377c2", "augment": "#ff7f0e", "collate": "#bcbd22",
    "data_wait": "#d62728", "h2d": "#7f7f7f", "forward": "#1f77b4", "backward": "#2ca02c", "optimizer": "#9467bd",
    "sample": "#17becf",
}
plt.rcParams.update({"figure.dpi": 100, "axes.grid": True, "grid.alpha": 0.3, "axes.spines.top": False,
                     "axes.spines.right": False, "font.size": 9, "axes.titlesize": 10})


def device_label(device: str) -> str:
    return "GPU" if device == "cuda" else "CPU"


def header(fig, record, title: str) -> None:
    """Figure title with the machine and run it was measured on."""
    env = record.environment or {}
    gpu = env.get("gpu") or {}
    devs = gpu.get("devices") or []
    machine = devs[0]["name"] if record.device == "cuda" and devs else (env.get("cpu_model") or "CPU")
    cores = f", {env.get('threads_used')} threads" if record.device == "cpu" else ""
    quick = " | quick mode" if (env.get("config") or {}).get("quick") else ""
    synth = ""
    ds = env.get("dataset") or {}
    if ds.get("synthetic"):
        synth = " | SYNTHETIC DATA"
    if env.get("pipeline"):  # a custom pipeline's name goes into every figure of its tree
        title = f"{env['pipeline']}: {title}"
    fig.suptitle(f"{title}\n{machine}{cores} | {env.get('time_utc', '')}{quick}{synth}", fontsize=11)
    try:
        fig.tight_layout(rect=(0, 0, 1, 0.93))
    except Exception:  # tight_layout can fail on unusual layouts; the figure is still correct
        pass


def not_available(ax, reason: str | None) -> None:
    ax.set_axis_off()
    ax.text(0.5, 0.5, "not available on this machine\n" + _wrap(reason or ""), ha="center", va="center",
            fontsize=9, color="#888", transform=ax.transAxes)


def missing_bar(ax, pos: float, reason: str | None, width: float = 0.8, horizontal: bool = False,
                fontsize: int = 7) -> None:
    """Where a bar's value is missing: an empty hatched bar over the lower quarter of the axis
    (a quarter of its width for horizontal bars) labelled "n/a (<reason>)"; never a 0 bar."""
    from matplotlib.transforms import blended_transform_factory

    from common.formatting import na

    style = {"fill": False, "hatch": "///", "edgecolor": "#999", "lw": 0.8}
    label = _wrap(na(reason), 22)
    if horizontal:
        ax.axhspan(pos - width / 2, pos + width / 2, xmin=0.0, xmax=0.25, **style)
        ax.text(0.26, pos, label, transform=blended_transform_factory(ax.transAxes, ax.transData), va="center",
                fontsize=fontsize, color="#666")
    else:
        ax.axvspan(pos - width / 2, pos + width / 2, ymin=0.0, ymax=0.25, **style)
        ax.text(pos, 0.26, label, transform=blended_transform_factory(ax.transData, ax.transAxes), ha="center",
                va="bottom", fontsize=fontsize, color="#666")


def bars_or_missing(ax, pos, values, reasons, width: float = 0.8, horizontal: bool = False, **kw) -> None:
    """Bars for the values present, ``missing_bar`` (with ``reasons[i]``) for the missing ones."""
    from common.formatting import is_missing

    for i, (p, v) in enumerate(zip(pos, values)):
        if is_missing(v):
            missing_bar(ax, p, reasons[i] if reasons else None, width, horizontal)
        elif horizontal:
            ax.barh(p, v, width, **kw)
        else:
            ax.bar(p, v, width, **kw)


def _wrap(text: str, width: int = 60) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width))


def status_figure(record, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(8, 3))
    ax.set_axis_off()
    who = f"{(record.environment or {}).get('pipeline')}: " if (record.environment or {}).get("pipeline") else ""
    ax.text(0.5, 0.6, f"{who}{record.kind}: {record.status}", ha="center", fontsize=14,
            color="#c00" if record.status == "error" else "#555", transform=ax.transAxes)
    ax.text(0.5, 0.3, _wrap(record.reason or "", 90), ha="center", va="top", fontsize=9, transform=ax.transAxes)
    return save_figure(fig, path)


def run_summary_figure(record, path: Path) -> Path:
    data = record.data
    sections = data.get("sections", {})
    names = list(sections)
    secs = [sections[n].get("measure_s") for n in names]
    fig, ax = plt.subplots(figsize=(8, 0.5 * len(names) + 1.8))
    for i, (n, v) in enumerate(zip(names, secs)):
        if v is None:
            missing_bar(ax, i, f"no measurement time; {sections[n]['status']}", horizontal=True)
            continue
        ax.barh(i, v, color="#2ca02c" if sections[n]["status"] == "ok" else "#d62728")
        ax.text(v, i, f" {v:.1f} s  {sections[n]['status']}", va="center", fontsize=8)
    ax.set_yticks(range(len(names)), names)
    ax.invert_yaxis()
    ax.set_xlabel("measurement time (s)")
    from common.formatting import fmt_or_na

    ax.set_title(f"Run overview: {fmt_or_na(data.get('wall_s'), '{:.0f} s', 'no wall time')} in all "
                 "(green: ok, red: error)")
    header(fig, record, f"{device_label(record.device)} analysis: where this run's time went")
    return save_figure(fig, path)


def fmt_rate(v: Any) -> str:
    if v is None:
        return "n/a"
    v = float(v)
    if v >= 1e6:
        return f"{v / 1e6:.2f}M"
    if v >= 1e4:
        return f"{v / 1e3:.1f}k"
    if v >= 100:
        return f"{v:.0f}"
    return f"{v:.3g}"


def errbar(summary: dict | None) -> tuple[float, list[float]]:
    """(median, [lower err, upper err]) of a Summary dict's interval (name it with errbar_note)."""
    from common.measure.stats import interval_of

    if not summary:
        return float("nan"), [0.0, 0.0]
    m = summary["median"]
    iv, _ = interval_of(summary)
    lo, hi = iv if iv else (m, m)
    return m, [max(0.0, m - lo), max(0.0, hi - m)]


def errbar_note(summaries) -> str:
    """'error bars: <kind>' for the Summary dicts drawn (several kinds are all named)."""
    from common.measure.stats import interval_label, interval_of

    kinds = list(dict.fromkeys(interval_label(interval_of(s)[1]) for s in summaries if s))
    return "error bars: " + (" / ".join(kinds) if kinds else "none")
