"""Figure of a custom pipeline's transforms: per-sample time of each, and of the chain."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from common.atomic import save_figure
from common.plots.common import errbar, header


def plot(record, arrays, out: Path, name: Callable[[str], str]) -> list[Path]:
    d = record.data
    names = d["order"] + ["whole chain"]
    stats = [d["per_transform_ms"][n] for n in d["order"]] + [d["chain_ms"]]
    m, e = zip(*[errbar(s) for s in stats])
    fig, ax = plt.subplots(figsize=(10, 0.5 * len(names) + 2))
    y = np.arange(len(names))
    ax.barh(y, m, xerr=np.array(e).T, color=["#ff7f0e"] * (len(names) - 1) + ["#555"], capsize=3)
    for i, v in enumerate(m):
        ax.text(v, i, f"  {v:.3g} ms", va="center", fontsize=8)
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    ax.set_xlabel(f"ms per sample (median, 95% interval; {d['samples']} samples x {d['repeats']} repeats, one thread)")
    ax.margins(x=0.2)
    header(fig, record, "Transforms, one by one")
    return [save_figure(fig, out / name("custom_transforms.png"))]
