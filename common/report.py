"""The Markdown report of one result tree, built from its records alone: every figure,
the environment, the key numbers and the method."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from common.analysis.context import file_name
from common.atomic import write_json, write_text
from common.records import Record, load_record


def _load(root: Path, device: str, base: str) -> Record | None:
    p = root / "metrics" / file_name(device, base)
    return load_record(p) if p.exists() else None


def _f(v: Any, fmt: str = "{:.3g}", none: str = "n/a") -> str:
    return none if v is None else fmt.format(v)


def key_numbers(records: dict[str, Record]) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    w = records.get("winning_solution")
    if w is not None and w.status == "ok":
        d = w.data
        r0 = d["rungs"][0]
        s = d["summary"]
        win = d["rungs"][s["winner_index"]]
        rows += [
            ("MONAI tutorial recipe, training", f"{r0['images_per_s']['median']:.0f} img/s "
             f"(pipeline efficiency {r0['pipeline_efficiency']:.2f}), test accuracy "
             f"{100 * r0['accuracy']['test_accuracy']:.2f}%"),
            ("Winning configuration", f"{win['name']}: {win['label']}"
             + (f" (accuracy gate {s['gate_reason']})" if s.get("gate_reason") else "")
             + (f"; rule: {s['winner_rule']}" if s.get("winner_rule") else "")),
            ("Winner, training", f"{win['images_per_s']['median']:.0f} img/s = {s['speedup']['value']:.1f}x the "
             f"recipe (95% CI {s['speedup']['ci95'][0]:.1f}-{s['speedup']['ci95'][1]:.1f}), test accuracy "
             f"{100 * win['accuracy']['test_accuracy']:.2f}%, efficiency {win['pipeline_efficiency']:.2f}"),
            ("Winner, energy", _f(win.get("gpu_j_per_image") if w.device == "cuda" else win.get("cpu_j_per_image"),
                                  "{:.4f} J/image") + (f" (reason: {win.get('energy_reason')})"
                                                        if win.get("energy_reason") else "")),
            ("Winner, MFU", _f(win.get("mfu"), "{:.1%}") + f" of the measured {d['matmul_peak']['dtype']} matmul rate "
             f"({d['matmul_peak']['flops_per_s'] / 1e12:.1f} TFLOP/s)"),
        ]
    p = records.get("pipeline_deep_dive")
    if p is not None and p.status == "ok":
        from common.analysis.interpret import interpret

        for k, c in p.data["configs"].items():
            it = interpret(c)
            rows.append((f"Pipeline ({k.replace('_', ' ')})", f"bottleneck {it['bottleneck']} ({it['why']}), "
                         f"data stall {100 * it['data_stall_fraction']:.0f}%; if data cost nothing the step would "
                         f"be {_f(it['speedup_if_data_free'], '{:.2f}x')} faster"))
    a = records.get("augmentation_analysis")
    if a is not None and a.status == "ok":
        rows.append(("Augmentation chain", f"{a.data['cpu_per_sample']['chain_images_per_s']['median']:.0f} img/s "
                     f"per sample on 1 CPU thread vs {a.data['device_batched']['chain_images_per_s']['median']:.0f} "
                     f"img/s batched ({a.data['chain_speedup_batched_vs_per_sample']:.0f}x); max |Δ| vs MONAI "
                     f"{a.data['quality']['per_transform']['chain']['vs_monai_max_abs']:.1e}"))
    pf = records.get("performance_analysis")
    if pf is not None and pf.status == "ok":
        lat = pf.data["inference_latency"]
        for prec, r in lat.items():
            rows.append((f"Inference batch 1 ({prec})", f"p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms"))
        best = pf.data.get("inference_best_batch")
        row = next((r for r in pf.data["inference_throughput"] if r["batch_size"] == best), None)
        if row:
            rows.append(("Inference best batch", f"{best}: {row['images_per_s']['median']:.0f} img/s"))
    rows += scaling_numbers(records.get("scaling"))
    v = records.get("visualizations")
    if v is not None and v.status == "ok" and v.data.get("training"):
        dice = ", ".join(f"{k} {x:.3f}" for k, x in (v.data.get("dice") or {}).items() if x is not None)
        sw = v.data["sliding_window"]
        rows.append(("3D segmentation", f"Dice {dice}; sliding-window inference {sw['seconds']:.2f} s for "
                                        f"{sw['voxels']} voxels"))
    return rows


def scaling_numbers(rec: Record | None) -> list[tuple[str, str]]:
    """Key numbers of the scaling section: the widest count against the first, or why there is no curve."""
    if rec is None or rec.status != "ok":
        return []
    d = rec.data
    if not d.get("available"):
        return [("Data-parallel scaling", d.get("reason") or "not measured")]
    a, b = d["rows"][0], d["rows"][-1]
    u = d["unit"]

    def tta(r):
        return f"{r['time_to_target_s']:.1f} s" if r["time_to_target_s"] is not None else "not reached"

    strong = b.get("strong_efficiency")
    return [(f"Data-parallel scaling, {b['workers']} {u}s", f"{b['images_per_s']['median']:.0f} img/s; weak-scaling "
             f"efficiency {b['weak_efficiency']['value']:.3f} (95% CI {b['weak_efficiency']['ci95'][0]:.3f}-"
             f"{b['weak_efficiency']['ci95'][1]:.3f})" + (f", strong {strong['value']:.3f}" if strong else "")
             + f"; time to target {tta(b)} vs {tta(a)} on {a['workers']}, test accuracy "
             f"{100 * b['test_accuracy']:.2f}%; all-reduce in flight {_f(b['comm_in_flight_share'], '{:.1%}')} of "
             f"the step, exposed {_f(b['comm_exposed_share'], '{:.1%}')}")]


def write_report(root: Path, device: str) -> Path:
    from common.analysis.engine import SECTIONS, record_paths

    summary = _load(root, device, "run_summary.json")
    records: dict[str, Record] = {}
    for kind, folder, *_ in SECTIONS:
        path = record_paths(root, device, kind, folder)[0]
        if path.exists():
            records[kind] = load_record(path)
    env = (summary.environment if summary else None) or next((r.environment for r in records.values()), {})
    reports = root / "reports"
    reports.mkdir(parents=True, exist_ok=True)
    dev_name = "GPU" if device == "cuda" else "CPU"
    lines = [f"# {dev_name} analysis report", ""]
    gpu = (env.get("gpu") or {})
    git = env.get("git") or {}
    devs = gpu.get("devices") or []
    ds = env.get("dataset") or {}
    cfg = env.get("config") or {}
    if ds.get("synthetic"):
        lines += ["> **The MedNIST data of this run is SYNTHETIC** (generated offline); its numbers describe the "
                  "pipeline, not real images.", ""]
    if cfg.get("quick"):
        lines += ["> Quick mode: fewer steps, repeats, epochs and images than the default run.", ""]
    lines += ["## Environment", "", "| | |", "|---|---|"]
    env_rows = [
        ("time (UTC)", env.get("time_utc")), ("host", env.get("hostname")), ("OS", env.get("os")),
        ("GPU", ", ".join(d["name"] for d in devs) if devs else gpu.get("reason")),
        ("driver / CUDA", f"{gpu.get('driver')} / {gpu.get('torch_cuda')}" if devs else None),
        ("CPU", f"{env.get('cpu_model')} ({env.get('physical_cores')} physical / {env.get('logical_cores')} logical "
                f"cores, {env.get('threads_used')} threads used)"),
        ("RAM", _f(env.get("ram_gib"), "{:.1f} GiB")),
        ("torch / MONAI / numpy / Python", f"{env.get('torch')} / {env.get('monai')} / {env.get('numpy')} / "
                                           f"{env.get('python')}"),
        ("git commit", f"{git.get('commit')}{' (dirty)' if git.get('dirty') else ''}"),
        ("dataset", f"{ds.get('source')} ({ds.get('total')} images{', SYNTHETIC' if ds.get('synthetic') else ''}, "
                    f"archive md5 {ds.get('archive_md5')})" if ds else "n/a"),
        ("seed", env.get("seed")),
    ]
    lines += [f"| {k} | {v} |" for k, v in env_rows]
    lines += ["", "## Key numbers", "", "| | |", "|---|---|"]
    kn = key_numbers(records)
    lines += [f"| {k} | {v} |" for k, v in kn] or ["| (no section finished) | |"]
    key_png = file_name(device, "key_numbers.png")
    lines += ["", f"![key numbers]({key_png})"]
    figures: list[str] = [f"reports/{key_png}"]
    lines += ["", "## Figures", ""]
    for kind, folder, *_ in SECTIONS:
        st = (summary.data["sections"].get(kind) if summary else None) or {}
        rec = records.get(kind)
        lines.append(f"### {kind.replace('_', ' ')}")
        lines.append("")
        if rec is None:
            lines += ["not run in this analysis.", ""]
            continue
        if rec.status != "ok":
            lines += [f"**{rec.status}**: {rec.reason}", ""]
        figs = st.get("figures") or sorted(str(p.relative_to(root)) for p in (root / folder).glob("*.png")) \
            if folder else st.get("figures") or []
        if not figs and folder == "":
            figs = [p.name for p in root.glob("*winning_solution_analysis.png")]
        for f in figs:
            rel = os.path.relpath(root / f, reports)
            figures.append(f)
            lines += [f"![{Path(f).stem}]({rel})", ""]
        rel_rec = os.path.relpath(record_paths(root, device, kind, folder)[0], reports)
        lines += [f"Record: [{Path(rel_rec).name}]({rel_rec})", ""]
    overview = root / "metrics" / file_name(device, "run_overview.png")
    if overview.exists():
        figures.append(str(overview.relative_to(root)))
        lines += ["### run overview", "", f"![run overview]({os.path.relpath(overview, reports)})", ""]
    if summary is not None:
        skipped = summary.data.get("skipped_images") or []
        lines += ["## Data problems", "", f"{len(skipped)} image(s) could not be decoded and were skipped."]
        lines += [f"- `{p}`: {why}" for p, why in skipped[:50]]
        lines += ["", "## Sampler overhead", ""]
        for name, ov in (summary.data.get("sampler_overhead") or {}).items():
            lines.append(f"- {name}: {ov.get('samples')} samples, mean read {_f(ov.get('mean_read_ms'), '{:.2f}')} "
                         f"ms, busy fraction {_f(ov.get('busy_fraction'), '{:.4f}')}")
        for name, why in (summary.data.get("sampler_unavailable") or {}).items():
            lines.append(f"- {name} sampler not available: {why}")
        lines.append("")
    lines += ["## Method", "",
              "- Every number was measured in this run on this machine; a sensor that does not exist gives `null` "
              "with its reason, and the figures say so.",
              "- Device work is timed with synchronization at window edges; warm-up (cuDNN autotune, graph capture, "
              "first batches) is recorded apart and excluded.",
              "- Windows are repeated; figures show medians with 95% bootstrap intervals; a measurement whose IQR "
              "exceeds 10% of its median is flagged unstable in the records.",
              "- Stage breakdowns come from steps synchronized at every stage edge; throughputs from unsynchronized "
              "windows. Energy comes from hardware counters (NVML total energy, RAPL), never from power × time "
              "estimates.",
              "- The optimization ladder changes one lever per rung, trains every rung from scratch for the same "
              "epochs on the same split, and names as winner the fastest rung whose test accuracy stays within the "
              "tolerance of the MONAI tutorial recipe's and whose GPU board energy is at most `WINNER_MAX_J_PER_IMAGE` "
              "joules per image (the fastest within the accuracy tolerance where no rung meets that; the records "
              "say which rule named the winner). A rung fed by DataLoader workers (the recipe) is timed "
              "in windows of whole epochs, each from an epoch boundary (one worker start and one epoch of batches, "
              "as in training; shorter windows would time the workers' prefetch queue), where an epoch takes at most "
              "`LOADER_EPOCH_WINDOW_MAX_S`; the records say which windows each rung got.", ""]
    path = reports / file_name(device, "report.md")
    write_text(path, "\n".join(lines) + "\n")
    write_json(reports / file_name(device, "report_index.json"),
               {"report": path.name, "figures": figures, "key_numbers": dict(kn)})
    _key_numbers_figure(kn, env, reports / file_name(device, "key_numbers.png"), dev_name)
    return path


def _key_numbers_figure(rows, env, path: Path, dev_name: str) -> None:
    import textwrap

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from common.atomic import save_figure

    fig, ax = plt.subplots(figsize=(12, 0.55 * max(len(rows), 1) + 1.2))
    ax.set_axis_off()
    y = 1.0
    for k, v in rows or [("no section finished", "")]:
        ax.text(0.0, y, k, fontsize=9, fontweight="bold", va="top", transform=ax.transAxes)
        ax.text(0.27, y, "\n".join(textwrap.wrap(v, 110)), fontsize=9, va="top", transform=ax.transAxes)
        y -= 1.0 / max(len(rows), 1)
    fig.suptitle(f"{dev_name} analysis: key numbers ({env.get('time_utc', '')})", fontsize=11)
    save_figure(fig, path)
