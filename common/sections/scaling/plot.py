"""Figure of the scaling section: data-parallel throughput and efficiency against the number of
GPUs (or CPU processes) with the ideal line, time to the target accuracy, the communication share
of the step, and each device's utilization, power and energy per image."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from common.atomic import save_figure
from common.plots.common import DEVICE_COLORS, device_label, errbar, fmt_rate, header, not_available

TARGET_EFFICIENCY = 0.95  # issue 18's bar for weak scaling at 2 GPUs, drawn as a reference line


def _curve(ax, rows, key: str, label: str, color: str, marker: str) -> None:
    pts = [(r["workers"], r[key]) for r in rows if r.get(key)]
    if not pts:
        return
    x = [p[0] for p in pts]
    m, e = zip(*[errbar(p[1]) for p in pts])
    ax.errorbar(x, m, yerr=np.array(e).T, marker=marker, color=color, capsize=3, label=label)
    for xi, yi in zip(x, m):
        ax.annotate(fmt_rate(yi), (xi, yi), textcoords="offset points", xytext=(0, 6), fontsize=7, ha="center")


def _throughput(ax, d, unit: str, color: str) -> None:
    rows = d["rows"]
    n0 = rows[0]["workers"]
    base = rows[0]["images_per_s"]["median"]
    xs = [r["workers"] for r in rows]
    ax.plot(xs, [base * x / n0 for x in xs], ls="--", color="#888", label="ideal (linear from the first count)")
    _curve(ax, rows, "images_per_s", f"weak: {d['per_worker_batch']} per {unit}, global batch grows", color, "o")
    _curve(ax, rows, "strong_images_per_s", f"strong: global batch {d['per_worker_batch']} split", "#ff7f0e", "s")
    ax.set_xticks(xs)
    ax.set_xlabel(d["units"])
    ax.set_ylabel("global images/s (median; bars: window range)")
    ax.set_title("Training throughput")
    ax.legend(fontsize=7)


def _efficiency(ax, d, unit: str, color: str) -> None:
    rows = d["rows"]
    xs = [r["workers"] for r in rows]
    ax.axhline(1.0, ls="--", color="#888", label="ideal")
    ax.axhline(TARGET_EFFICIENCY, ls=":", color="#c00", label=f"target {TARGET_EFFICIENCY} (weak, 2 GPUs)")
    for key, label, col, mk in (("weak_efficiency", "weak scaling", color, "o"),
                                ("strong_efficiency", "strong scaling", "#ff7f0e", "s")):
        pts = [(r["workers"], r[key]) for r in rows if r.get(key)]
        if pts:
            v = [p[1]["value"] for p in pts]
            err = np.array([[max(0, p[1]["value"] - p[1]["ci95"][0]), max(0, p[1]["ci95"][1] - p[1]["value"])]
                            for p in pts]).T
            ax.errorbar([p[0] for p in pts], v, yerr=err, marker=mk, color=col, capsize=3, label=label)
            for (x, _), y in zip(pts, v):
                ax.annotate(f"{y:.3f}", (x, y), textcoords="offset points", xytext=(0, -12), fontsize=7, ha="center")
    ax.set_xticks(xs)
    top = max([1.0] + [r[k]["value"] for r in rows for k in ("weak_efficiency", "strong_efficiency") if r.get(k)])
    ax.set_ylim(0, 1.15 * top)
    ax.set_xlabel(d["units"])
    ax.set_ylabel("throughput / (count x first count's); bars: window range")
    ax.set_title("Scaling efficiency")
    ax.legend(fontsize=7, loc="lower left")


def _time_to_target(ax, d, unit: str, color: str, target) -> None:
    rows = d["rows"]
    x = np.arange(len(rows))
    vals = [r["time_to_target_s"] for r in rows]
    ax.bar(x, [v or 0 for v in vals], color=color)
    for i, (r, v) in enumerate(zip(rows, vals)):
        text = (f"{v:.1f} s, epoch {r['epochs_to_target']}\n(training {r.get('train_s_to_target') or 0:.1f} s)\n"
                f"test {100 * r['test_accuracy']:.2f}%" if v is not None
                else f"not reached\n(val {100 * (r['final_val_accuracy'] or 0):.1f}%)")
        ax.text(i, v or 0, text, ha="center", va="bottom", fontsize=7)
    ax.set_xticks(x, [str(r["workers"]) for r in rows])
    ax.set_xlim(-0.8, len(rows) - 0.2)
    ax.set_ylim(0, 1.2 * max([1.0] + [v for v in vals if v is not None]))
    ax.set_xlabel(d["units"])
    ax.set_ylabel("s from the worker's process start")
    ax.set_title(f"Time to {target:.0%} validation accuracy (all one-time costs)")


def _comm(ax, d, unit: str) -> None:  # noqa: ARG001
    rows = [r for r in d["rows"] if r.get("comm_in_flight_share") is not None]
    if not rows:
        not_available(ax, f"one {unit}: nothing to communicate")
        ax.set_title("Communication share of the step")
        return
    x = np.arange(len(rows))
    ax.bar(x - 0.2, [100 * r["comm_in_flight_share"] for r in rows], 0.4, color="#9467bd",
           label="all-reduce in flight (comm hook)")
    ax.bar(x + 0.2, [100 * (r["comm_exposed_share"] or 0) for r in rows], 0.4, color="#d62728",
           label="exposed: step time lost to sync (vs no_sync)")
    for i, r in enumerate(rows):
        mb = (r.get("allreduce_bytes_per_step") or 0) / 2**20
        ax.text(i, 100 * max(r["comm_in_flight_share"], r["comm_exposed_share"] or 0), f"{mb:.0f} MiB/step",
                ha="center", va="bottom", fontsize=7)
    ax.set_xticks(x, [str(r["workers"]) for r in rows])
    ax.set_xlim(-0.8, len(rows) - 0.2)
    ax.set_xlabel(d["units"])
    ax.set_ylabel("% of the step")
    ax.set_title("Communication share of the step")
    ax.legend(fontsize=7)


def _devices(ax, d, unit: str, color: str) -> None:
    bars = [(r["workers"], dev) for r in d["rows"] for dev in r["per_device"]]
    key = "gpu_util_pct_mean" if d["device"] == "cuda" else "cpu_total_pct_mean"
    bars = [(n, dev) for n, dev in bars if dev.get(key) is not None]
    if not bars:
        not_available(ax, next((dev.get("reason") for r in d["rows"] for dev in r["per_device"] if dev.get("reason")),
                               "no utilization samples"))
        ax.set_title("Per-device utilization")
        return
    x = np.arange(len(bars))
    ax.bar(x, [dev[key] for _, dev in bars], color=color)
    for i, (_, dev) in enumerate(bars):
        power = f"\n{dev['power_w_mean']:.0f} W" if dev.get("power_w_mean") is not None else ""
        jpi = f"\n{dev['j_per_image']:.4f} J/img" if dev.get("j_per_image") is not None else ""
        ax.text(i, dev[key], f"{dev[key]:.0f}%{power}{jpi}", ha="center", va="bottom", fontsize=7)
    ax.set_xticks(x, [f"{n} {d['units'] if n > 1 else d['unit']}: rank {dev['rank']}" for n, dev in bars], fontsize=7,
                  rotation=20)
    ax.set_ylim(0, 130)
    ax.set_ylabel("utilization % (own device, timed windows)")
    ax.set_title("Per-device utilization, power, energy (weak scaling)")


def plot(record, arrays, out_dir: Path, name: Callable[[str], str]) -> list[Path]:
    d = record.data
    unit = d["unit"]
    color = DEVICE_COLORS[record.device]
    fig, axes = plt.subplots(2, 3, figsize=(18, 9.5))
    a = axes.ravel()
    if d.get("available"):
        _throughput(a[0], d, unit, color)
        _efficiency(a[1], d, unit, color)
    else:
        for ax, title in ((a[0], "Training throughput"), (a[1], "Scaling efficiency")):
            not_available(ax, d.get("reason"))
            ax.set_title(title)
    if d["rows"]:
        target = d["runs"][str(d["rows"][0]["workers"])]["training"]["target_val_accuracy"]
        _time_to_target(a[2], d, unit, color, target)
        _comm(a[3], d, unit)
        _devices(a[4], d, unit, color)
    else:
        for ax in a[2:5]:
            not_available(ax, d.get("reason"))
    a[5].set_axis_off()
    a[5].text(0, 1, _notes(d), va="top", fontsize=8, transform=a[5].transAxes, wrap=True)
    header(fig, record, f"Data-parallel scaling on the {device_label(record.device)}: torchrun + "
                        f"DistributedDataParallel ({'NCCL' if record.device == 'cuda' else 'gloo'}), "
                        f"DenseNet121 on MedNIST")
    return [save_figure(fig, out_dir / name("scaling.png"))]


def _notes(d) -> str:
    import textwrap

    first = d["runs"][str(d["rows"][0]["workers"])] if d["rows"] else {}
    lines = [f"Per-{d['unit']} batch {d['per_worker_batch']} (weak); strong scaling splits that global batch.",
             f"Learning rate: {first.get('lr_rule', 'n/a')}.",
             f"DDP: {d['ddp']}; precision {first.get('precision')}, channels_last {first.get('channels_last')}.",
             "Throughput: windows with barrier + device sync at both edges; efficiency = throughput / "
             "(count x first count's).",
             "Time to target: from each run's worker process start (imports, process group, data, cuDNN "
             "autotuning, training, evaluation all counted)."]
    for r in d["rows"]:
        lines.append(f"{r['workers']} {d['unit']}(s): {fmt_rate(r['images_per_s']['median'])} img/s, lr "
                     f"{r['lr']:.2e}, global batch {r['global_batch']}"
                     + (f", {r['j_per_image']:.4f} J/image" if r.get("j_per_image") is not None else
                        f", energy n/a ({r.get('energy_reason')})"))
    lines += [f"Note: {n}" for n in d.get("notes", [])]
    if not d.get("available"):
        lines.append(d.get("reason") or "")
    return "\n".join(textwrap.fill(t, 80) for t in lines)
