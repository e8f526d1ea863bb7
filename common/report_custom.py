"""The Markdown report of a custom pipeline's tree, from its records: key numbers first, every
figure, what was skipped and why, the files, the environment and the method."""

from __future__ import annotations

import os
from pathlib import Path

from common.atomic import write_text
from common.layout import file_name
from common.records import Record
from common.report import environment_rows, files_section


def _ms(s: dict | None) -> str:
    return "not available" if not s else f"{s['median']:.3g} ms (95% CI {s['ci95'][0]:.3g}-{s['ci95'][1]:.3g})"


def key_rows(records: dict[str, Record]) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    pd = records.get("pipeline_deep_dive")
    if pd is not None and pd.status == "ok":
        for c in pd.data["configs"].values():
            it = c["interpretation"]
            rows.append((f"Training, {c['label']}", f"{c['end_to_end_images_per_s']['median']:.4g} samples/s end "
                         f"to end ({100 * c['pipeline_efficiency']:.0f}% of the model-only "
                         f"{c['model_only_images_per_s']['median']:.4g}/s); bottleneck {it['bottleneck']} "
                         f"({it['why']}); data stall {100 * it['data_stall_fraction']:.0f}%"))
    elif pd is not None:
        rows.append(("Training", f"not available: {pd.reason}"))
    pf = records.get("performance_analysis")
    if pf is not None and pf.status == "ok":
        lat = pf.data["inference_latency"]
        rows.append(("Inference, batch 1", f"p50 {lat['p50_ms']:.3g} ms, p95 {lat['p95_ms']:.3g} ms, "
                                           f"p99 {lat['p99_ms']:.3g} ms ({lat['calls']} calls)"))
        ok = [r for r in pf.data["inference_throughput"] if r.get("images_per_s")]
        if ok:
            best = max(ok, key=lambda r: r["images_per_s"]["median"])
            rows.append(("Inference, best batch", f"{best['batch_size']}: {best['images_per_s']['median']:.4g} "
                                                  f"samples/s"))
        for key, r in pf.data["levers"]["inference_batch1"].items():
            rows.append((f"Inference lever {key}", f"not available: {r['skipped']}" if r.get("skipped")
                         else f"p50 {r['p50_ms']:.3g} ms"))
        for r in pf.data["levers"]["training"].values():
            rows.append((f"Training lever {r['label']}", f"not available: {r['skipped']}" if r.get("skipped")
                         else f"{r['images_per_s']['median']:.4g} samples/s"))
    tr = records.get("augmentation_analysis")
    if tr is not None and tr.status == "ok":
        rows.append(("Transform chain", f"{_ms(tr.data['chain_ms'])} per sample, slowest "
                     f"{max(tr.data['per_transform_ms'], key=lambda k: tr.data['per_transform_ms'][k]['median'])}"))
    return rows


def write_custom_report(root: Path, device: str, records: dict[str, Record]) -> Path:
    summary = records["run_summary"]
    env = summary.environment
    reports = root / "reports"
    reports.mkdir(parents=True, exist_ok=True)
    name = summary.data["pipeline"]
    dev = "GPU" if device == "cuda" else "CPU"
    lines = [f"# {name}: custom pipeline analysis on the {dev}", ""]
    if summary.data.get("description"):
        lines += [summary.data["description"], ""]
    lines += ["## Key numbers", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in key_rows(records)] or ["| (no section finished) | |"]
    lines += ["", "## Figures", ""]
    for kind, st in summary.data["sections"].items():
        rec = records.get(kind)
        lines += [f"### {kind.replace('_', ' ')}", ""]
        if rec is not None and rec.status != "ok":
            lines += [f"**{rec.status}**: not available: {rec.reason}", ""]
        for f in st.get("figures") or []:
            lines += [f"![{name}: {Path(f).stem}]({os.path.relpath(root / f, reports)})", ""]
        lines += [f"Record: [{Path(st['record']).name}]({os.path.relpath(root / st['record'], reports)})", ""]
    lines += files_section(root, reports, file_name(device, ""))
    lines += ["## Environment", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in environment_rows(env) if k != "dataset"]
    lines += [f"| pipeline | {name} |", ""]
    lines += ["## Method", "",
              "- Every number was measured in this run on this machine, on the pipeline's own model, data and "
              "transforms; what the pipeline does not provide is skipped with the reason, never estimated.",
              "- The stage breakdown synchronizes the device at every stage edge (data_wait, h2d, forward with the "
              "loss, backward, optimizer); throughputs come from unsynchronized windows synchronized at their edges; "
              "the model-only ceiling repeats one device batch. Warm-up steps are excluded.",
              "- Each lever (device-resident data, bf16 autocast, channels_last, a CUDA graph of the inference "
              "forward) is measured on a fresh copy of the model; the suite never changes your model.",
              "- Batches of the sweep are built from the pipeline's own samples (repeated where it has fewer; the "
              "record gives the number of distinct samples). Energy comes from hardware counters (NVML, RAPL) "
              "where they exist.", ""]
    return write_text(reports / file_name(device, "report.md"), "\n".join(lines) + "\n")
