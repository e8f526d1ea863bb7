"""The analysis engine: one code path for ``cuda`` and ``cpu``. Each section measures into a
record (JSON in metrics/ and beside its figures), then its plotter draws the figures from
the record alone; ``--replot`` redraws everything from metrics/ without measuring."""

from __future__ import annotations

import argparse
import functools
import importlib
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from common import layout
from common.analysis.context import Context
from common.analysis.settings import Settings
from common.atomic import write_text
from common.cli import add_config_flags, validate_config, values_from_args
from common.errors import UserError
from common.layout import ALWAYS_LAST, SECTION_NAMES, SECTIONS, Section, file_name, tree_name
from common.records import Record, load_record, plot_or_refuse, save_record
from common.runlock import interruption, resumed_status, run_guard

FLAG_NAMES = ["DATA_DIR", "RESULTS_DIR", "VOLUME_PATH", "LABEL_PATH", "BATCH_SIZE", "LEARNING_RATE", "EPOCHS",
              "TARGET_VAL_ACCURACY", "NUM_WORKERS", "CPU_THREADS", "SAMPLE_HZ", "WARMUP_STEPS", "MEASURE_STEPS",
              "REPEATS", "SEED", "VOLUME_SPACING_MM", "VOLUME_TRAIN_STEPS"]


def build_parser(device: str) -> argparse.ArgumentParser:
    what = "GPU (CUDA)" if device == "cuda" else "CPU"
    p = argparse.ArgumentParser(
        description=f"Measure a MONAI/PyTorch medical imaging pipeline on the {what}: where time, memory and energy "
                    f"go, stage by stage, and which configuration wins. Writes "
                    f"<results-dir>/{tree_name(device)}/ (figures + the JSON records they are drawn from).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Sections: " + ", ".join(SECTION_NAMES) + ". Defaults come from config.py; flags override them.")
    p.add_argument("--quick", action="store_true",
                   help="small, fast measurement (minutes): fewer steps, repeats, epochs and images")
    p.add_argument("--replot", action="store_true", help="redraw every figure and the report from metrics/ alone")
    p.add_argument("--sections", default=None,
                   help="comma-separated subset of sections to run (default: all)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--resume", action="store_true",
                   help="keep the sections whose records are complete (status ok, same settings) and measure only "
                        "the others: finishes an interrupted run")
    add_config_flags(p, FLAG_NAMES)
    from common.cli import SCALING_FLAGS, add_set_flag

    if device == "cuda":  # the scaling section's GPU count and torchrun's rendezvous for several machines
        add_config_flags(p, SCALING_FLAGS)

    add_set_flag(p)
    return p


def _selected(spec: str | None) -> list[Section]:
    if not spec:
        return list(SECTIONS)
    want = [s.strip() for s in spec.split(",") if s.strip()]
    unknown = [w for w in want if w not in SECTION_NAMES]
    if unknown:
        raise UserError(f"--sections: unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTION_NAMES)}")
    return [s for s in SECTIONS if s.name in want]


def _plot(kind: str, plot_module: str, record: Record, root: Path, folder: str, device: str) -> list[Path]:
    import numpy as np

    from common.plots import common as pc

    arrays = None
    ap = layout.arrays_path(root, device, kind)
    if ap.exists():
        with np.load(ap) as z:
            arrays = {k: z[k] for k in z.files}
    out_dir = root / folder
    out_dir.mkdir(parents=True, exist_ok=True)
    if record.status != "ok":
        return [pc.status_figure(record, out_dir / file_name(device, f"{kind}_status.png"))]
    mod = importlib.import_module(plot_module)
    return mod.plot(record, arrays, out_dir, lambda base: file_name(device, base))


def run(argv: list[str] | None, device_kind: str) -> int:
    parser = build_parser(device_kind)
    args = parser.parse_args(argv)
    from common.cli import explicit_flags

    values = values_from_args(args, explicit_flags(parser, argv))
    validate_config(values)
    selected = _selected(args.sections)
    root = Path(values["RESULTS_DIR"]) / tree_name(device_kind)
    with run_guard(root):  # one writer per results tree; SIGTERM unwinds like Ctrl-C
        if args.replot:
            return replot(root, device_kind, selected)
        return _run(args, values, selected, root, device_kind)


def _run(args, values, selected, root: Path, device_kind: str) -> int:
    import torch

    if device_kind == "cuda" and not torch.cuda.is_available():
        reason = "torch.cuda.is_available() is False (no NVIDIA GPU, driver or CUDA build of torch)"
        print(f"GPU analysis skipped: no CUDA device on this machine ({reason}); the CPU analysis still runs.")
        save_record(root / "metrics" / "gpu_status.json",
                    Record(kind="gpu_status", device="cuda", data={"cuda_available": False}, status="skipped",
                           reason=reason))
        return 0
    settings = Settings.resolve(values, device_kind, args.quick)
    from common.measure import stats

    with stats.using(settings.bootstrap_resamples, settings.unstable_iqr_fraction):
        return _analyze(settings, root, selected, progress=not args.no_progress, resume=args.resume)


def _context(settings: Settings, root: Path, selected: list[Section], progress: bool) -> Context:
    """The run's device set up as the settings say, and its context (data checked before any work)."""
    import torch

    from common.measure.environment import collect

    device = torch.device("cuda:0" if settings.device == "cuda" else "cpu")
    torch.set_num_threads(settings.cpu_threads)
    torch.manual_seed(settings.seed)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = settings.cudnn_benchmark
        stale = root / "metrics" / "gpu_status.json"
        if stale.exists():
            stale.unlink()
    ctx = Context(settings=settings, device=device, root=root, environment={}, progress=progress)
    needs_data = any(s.name != "visualizations" for s in selected)
    manifest = ctx.data.source if needs_data else None  # missing data fails here, before any work
    ctx.environment = collect(config=settings.to_dict(), dataset=manifest, seed=settings.seed,
                              threads_used=settings.cpu_threads)
    return ctx


def _analyze(settings: Settings, root: Path, selected: list[Section], progress: bool, resume: bool = False) -> int:
    from common.measure.energy import EnergyMeter
    from common.measure.samplers import Monitor

    device_kind = settings.device
    ctx = _context(settings, root, selected, progress)
    status: dict[str, Any] = {}
    section_spans = []
    started = time.perf_counter()
    print(f"{tree_name(device_kind)}: {len(selected)} section(s) on {ctx.device}"
          f"{' (quick)' if settings.quick else ''} -> {root}")
    gpu_index = 0 if ctx.device.type == "cuda" else None
    monitor = Monitor(settings.sample_hz, gpu_index=gpu_index)
    ctx.energy = EnergyMeter(gpu_index=gpu_index, device=str(ctx.device))
    ctx.monitor = monitor
    interrupted = None
    try:
        _sections(ctx, resume, selected, status, section_spans)
    except KeyboardInterrupt as err:  # SIGINT, or SIGTERM (common.runlock): write what finished, then exit
        interrupted = err
    _write_trace(ctx, monitor, section_spans)
    summary = Record(kind="run_summary", device=device_kind, environment=ctx.environment,
                     data={"sections": status, "wall_s": time.perf_counter() - started,
                           "settings": settings.to_dict(), "sampler_overhead": {
                               s.name: s.overhead() for s in monitor.samplers},
                           "sampler_unavailable": monitor.unavailable,
                           **(ctx._data.problems() if ctx._data else {})},
                     notes=list(settings.notes))
    if interrupted is not None:
        summary.data["interrupted"] = interruption(interrupted, selected, status)
    save_record(layout.summary_path(root, device_kind), summary)
    _plot_summary_and_report(root, device_kind)
    if interrupted is not None:
        raise interrupted
    failed = [k for k, v in status.items() if v["status"] == "error"]
    print(f"done in {time.perf_counter() - started:.0f} s; report: "
          f"{root / 'reports' / file_name(device_kind, 'report.md')}")
    if failed:
        print(f"error: section(s) failed: {', '.join(failed)} (see metrics/*_error.txt)", file=sys.stderr)
        return 3
    return 0


def _sections(ctx: Context, resume: bool, selected: list[Section], status: dict, section_spans: list) -> None:
    """Measure, write and plot each selected section (the sampling one last)."""
    with ctx.monitor:
        for sec in selected:
            if sec.name == ALWAYS_LAST:
                continue
            if resume and _resumed(ctx, status, sec):
                continue
            t0 = time.perf_counter()
            print(f"[{sec.name}] measuring ...", flush=True)
            rec = _measure(ctx, sec.name, sec.module("measure"))
            t1 = time.perf_counter()
            section_spans.append({"name": sec.name, "start": t0, "end": t1, "status": rec.status})
            status[sec.name] = _write_and_plot(ctx, rec, sec.name, sec.folder, sec.module("plot"))
            status[sec.name]["measure_s"] = t1 - t0
            print(f"[{sec.name}] {rec.status} in {t1 - t0:.1f} s" + (f": {rec.reason}" if rec.reason else ""),
                  flush=True)
    ctx.cache.section_spans = section_spans
    if any(s.name == ALWAYS_LAST for s in selected):
        sec = layout.section(ALWAYS_LAST)
        if not (resume and _resumed(ctx, status, sec)):
            rec = _measure(ctx, sec.name, sec.module("measure"))
            status[sec.name] = _write_and_plot(ctx, rec, sec.name, sec.folder, sec.module("plot"))


def _measure(ctx: Context, kind: str, module: str) -> Record:
    mod = importlib.import_module(module)
    try:
        data = mod.measure(ctx)
        return Record(kind=kind, device=ctx.kind, data=data, environment=ctx.environment,
                      notes=list(ctx.settings.notes))
    except UserError:
        raise
    except Exception as exc:  # one failing section does not lose the others
        tb = traceback.format_exc()
        write_text(ctx.root / "metrics" / file_name(ctx.kind, f"{kind}_error.txt"), tb)
        return Record(kind=kind, device=ctx.kind, data={}, environment=ctx.environment, status="error",
                      reason=f"{type(exc).__name__}: {exc}".splitlines()[0][:500])


def _resumed(ctx: Context, status: dict, sec: Section) -> bool:
    """--resume: keep a finished record (its figures redrawn); False if it must be measured."""
    entry = resumed_status(layout.record_paths(ctx.root, ctx.kind, sec.name, sec.folder)[0], sec.name,
                           ctx.settings.to_dict(), lambda rec: _plot(sec.name, sec.module("plot"), rec, ctx.root,
                                                                     sec.folder, ctx.kind), ctx.root)
    if entry is not None:
        status[sec.name] = entry
    return entry is not None


def _write_and_plot(ctx: Context, rec: Record, kind: str, folder: str, plot_module: str) -> dict[str, Any]:
    canonical, copy = layout.record_paths(ctx.root, ctx.kind, kind, folder)
    arrays = ctx.cache.figure_arrays.pop(kind, None)
    if arrays:
        ctx.save_arrays(layout.arrays_path(ctx.root, ctx.kind, kind), arrays)
        rec.data["arrays_file"] = layout.arrays_path(ctx.root, ctx.kind, kind).name
    save_record(canonical, rec)
    save_record(copy, rec)
    try:
        figures = _plot(kind, plot_module, rec, ctx.root, folder, ctx.kind)
        plot_error = None
    except Exception as exc:
        write_text(ctx.root / "metrics" / file_name(ctx.kind, f"{kind}_plot_error.txt"), traceback.format_exc())
        figures, plot_error = [], f"{type(exc).__name__}: {exc}"
        print(f"[{kind}] plotting failed: {plot_error}", file=sys.stderr)
    return {"status": rec.status if not plot_error else "error", "reason": rec.reason or plot_error,
            "figures": [str(p.relative_to(ctx.root)) for p in figures], "record": str(canonical.relative_to(ctx.root))}


def _write_trace(ctx: Context, monitor, section_spans: list[dict]) -> None:
    """metrics/<prefix>trace.json: sections, stage spans and sampler counters (Perfetto)."""
    from common.tree_outputs import write_run_trace

    write_run_trace(ctx.root, file_name(ctx.kind, ""), ctx.kind, monitor.to_dict(),
                    [s.to_dict() for s in ctx.timeline], section_spans, tree_name(ctx.kind))


def _plot_summary_and_report(root: Path, device_kind: str) -> None:
    from common.plots import common as pc
    from common.report import write_report
    from common.tree_outputs import finish_tree

    path = layout.summary_path(root, device_kind)
    if path.exists():  # an interrupted run may have none: the report says so
        summary = load_record(path, kind="run_summary")
        pc.run_summary_figure(summary, root / "metrics" / file_name(device_kind, "run_overview.png"))
    finish_tree(root, file_name(device_kind, ""), write_report(root, device_kind))


def replot(root: Path, device_kind: str, selected) -> int:
    metrics = root / "metrics"
    if not metrics.is_dir():
        raise UserError(f"{metrics}: no records to replot; run the analysis first (without --replot)")
    n = 0
    for sec in selected:
        kind, folder, plot_module = sec.name, sec.folder, sec.module("plot")
        canonical, copy = layout.record_paths(root, device_kind, kind, folder)
        if not canonical.exists():
            print(f"[{kind}] no record in {metrics}; skipped")
            continue
        rec = load_record(canonical, kind=kind)
        save_record(copy, rec)
        figs = plot_or_refuse(canonical, functools.partial(_plot, kind, plot_module, rec, root, folder, device_kind))
        n += len(figs)
        print(f"[{kind}] {len(figs)} figure(s) redrawn")
    _plot_summary_and_report(root, device_kind)
    print(f"replotted {n} figure(s) and the report from {metrics}")
    return 0


def main_for(device_kind: str):
    from common.errors import run_main

    @run_main
    def main(argv: list[str] | None = None) -> int:
        return run(argv, device_kind)

    return main

