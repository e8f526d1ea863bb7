"""analyze_custom_pipeline: the engine's machinery (Context, samplers, energy meter, records,
plotters, trace, report, HTML, CSV) run on a user's pipeline instead of MedNIST. Writes
<results>/custom_pipelines/<name>/<gpu|cpu>_results/ with the suite's folders; each section the
pipeline does not allow is a record with status "skipped" and the reason."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from common.analysis.context import Context
from common.analysis.engine import _measure, _write_and_plot
from common.layout import file_name, section, tree_name
from common.pipeline_protocol import CustomPipeline, as_pipeline, missing_for_training, slug
from common.records import Record, save_record

# (record kind, folder, analysis module, plot module, why it cannot run or None)
CUSTOM_SECTIONS = [
    ("pipeline_deep_dive", "pipeline_deep_dive", "common.analysis.custom_pipeline",
     section("pipeline_deep_dive").module("plot")),
    ("performance_analysis", "performance_analysis", "common.analysis.custom_performance",
     "common.plots.custom_performance"),
    ("augmentation_analysis", "augmentation_analysis", "common.analysis.custom_transforms",
     "common.plots.custom_transforms"),
    ("visualizations", "visualizations", "", ""),
    ("utilization_patterns", "utilization_patterns", section("utilization_patterns").module("measure"),
     section("utilization_patterns").module("plot")),
]


def tree_root(results_dir: str | Path, pipeline_name: str, device_kind: str) -> Path:
    return Path(results_dir) / "custom_pipelines" / slug(pipeline_name) / tree_name(device_kind)


def why_skipped(kind: str, p: CustomPipeline) -> str | None:
    if kind == "pipeline_deep_dive":
        return missing_for_training(p)
    if kind == "performance_analysis" and p.example_input is None and p.train_loader is None and p.dataset is None:
        return "the pipeline gives no example_input, train_loader or dataset to run inference on"
    if kind == "augmentation_analysis":
        if not p.transforms:
            return "the pipeline gives no transforms to time"
        if p.transform_inputs is None and p.dataset is None:
            return "the pipeline gives transforms but no transform_inputs or dataset to apply them to"
    if kind == "visualizations":
        return ("the suite draws no pictures of a custom pipeline's outputs (the MedNIST/3D figures are its own "
                "workloads'); its measurements are in the other folders")
    return None


def analyze_pipeline(pipeline: Any, settings, device_kind: str, progress: bool = False) -> dict[str, Record]:
    """Measure ``pipeline`` with ``settings`` (a Settings) on ``device_kind``; the records by kind."""
    from common.measure.energy import EnergyMeter
    from common.measure.environment import collect
    from common.measure.samplers import Monitor
    from common.report_custom import write_custom_report
    from common.tree_outputs import finish_tree, write_run_trace

    p = as_pipeline(pipeline)
    root = tree_root(settings.results_dir, p.name, device_kind)
    device = torch.device("cuda:0" if device_kind == "cuda" else "cpu")
    torch.set_num_threads(settings.cpu_threads)
    torch.manual_seed(settings.seed)
    env = collect(config=settings.to_dict(), dataset={"source": f"custom pipeline {p.name}", "synthetic": False},
                  seed=settings.seed, threads_used=settings.cpu_threads)
    env["pipeline"] = p.name
    ctx = Context(settings=settings, device=device, root=root, environment=env, progress=progress)
    ctx.cache.pipeline = p
    monitor = Monitor(settings.sample_hz, gpu_index=0 if device.type == "cuda" else None)
    ctx.energy = EnergyMeter(gpu_index=0 if device.type == "cuda" else None, device=str(device))
    ctx.monitor = monitor
    records: dict[str, Record] = {}
    status: dict[str, Any] = {}
    spans: list[dict] = []
    started = time.perf_counter()
    print(f"custom pipeline {p.name!r} on {device} -> {root}")
    with monitor:
        for kind, folder, module, plot_module in CUSTOM_SECTIONS[:-1]:
            t0 = time.perf_counter()
            rec = _section(ctx, kind, module, p)
            spans.append({"name": kind, "start": t0, "end": time.perf_counter(), "status": rec.status})
            records[kind] = rec
            status[kind] = _write_and_plot(ctx, rec, kind, folder, plot_module)
            print(f"[{kind}] {rec.status}" + (f": {rec.reason}" if rec.reason else ""), flush=True)
    ctx.cache.section_spans = spans
    kind, folder, module, plot_module = CUSTOM_SECTIONS[-1]
    records[kind] = _section(ctx, kind, module, p)
    status[kind] = _write_and_plot(ctx, records[kind], kind, folder, plot_module)
    write_run_trace(root, file_name(device_kind, ""), device_kind, monitor.to_dict(),
                    [s.to_dict() for s in ctx.timeline], spans, f"{p.name} ({tree_name(device_kind)})")
    summary = Record(kind="run_summary", device=device_kind, environment=env,
                     data={"pipeline": p.name, "description": p.description, "sections": status,
                           "wall_s": time.perf_counter() - started, "settings": settings.to_dict(),
                           "sampler_overhead": {s.name: s.overhead() for s in monitor.samplers},
                           "sampler_unavailable": monitor.unavailable, "skipped_images": []})
    save_record(root / "metrics" / file_name(device_kind, "run_summary.json"), summary)
    records["run_summary"] = summary
    md = write_custom_report(root, device_kind, records)
    finish_tree(root, file_name(device_kind, ""), md)
    print(f"custom pipeline {p.name!r} done in {time.perf_counter() - started:.0f} s; "
          f"report: {md.with_suffix('.html')}")
    return records


def _section(ctx: Context, kind: str, module: str, p: CustomPipeline) -> Record:
    reason = why_skipped(kind, p)
    if reason:
        return Record(kind=kind, device=ctx.kind, data={"pipeline": p.name}, environment=ctx.environment,
                      status="skipped", reason=reason)
    return _measure(ctx, kind, module)
