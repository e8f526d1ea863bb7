"""The GPU vs CPU comparison's command line (what enhanced_gpu_cpu_comparison.py runs and the
Python API's EnhancedGPUCPUComparator calls): one module, so that the script and the API do
not import each other."""

from __future__ import annotations

import argparse
from pathlib import Path

from common.errors import UserError, run_main

EPILOG = """\
what it needs:
  each tree's metrics/ records: performance_analysis, pipeline_deep_dive, winning_solution,
  augmentation_analysis, utilization_patterns (visualizations is used when present). A missing,
  truncated or incomplete record, different schema versions, or different workloads (image size,
  classes, synthetic vs real data, model) stop it with one line naming the file; nothing is written.
  Runs from different machines, days or code versions are compared and the differences stated.

what it writes (<results-dir>/comparison_results/, all or nothing):
  performance_comparison/  gpu_cpu_performance_dashboard.png, gpu_cpu_performance_stats.json
  utilization_comparison/  augmentation_comparison/  pipeline_comparison/   figure + its record
  visualizations/          gpu_cpu_efficiency_analysis.png, gpu_cpu_performance_comparison.png,
                           gpu_cpu_radar_chart.png (+ gpu_cpu_efficiency_comparison.json)
  reports/                 gpu_cpu_comparison_report.md (verdicts, tables, every figure linked) and
                           gpu_cpu_comparison_report.html (self-contained: every figure embedded)
  csv/                     every table of the report and of the records, as CSV
  metrics/                 every comparison record (what --replot reads)

a GPU tree that holds only gpu_status.json with status "skipped" (no CUDA on the GPU run's machine):
  prints "GPU analysis was skipped: <reason>; nothing to compare" and exits 0, writing nothing.

examples:
  python enhanced_gpu_cpu_comparison.py
  python enhanced_gpu_cpu_comparison.py --gpu /runs/h100/gpu_results --cpu /runs/laptop/cpu_results \\
      --results-dir /runs/compare --gpu-price-per-hour 2.5 --cpu-price-per-hour 0.4
  python enhanced_gpu_cpu_comparison.py --replot
"""


def build_parser() -> argparse.ArgumentParser:
    from common.cli import add_config_flags

    p = argparse.ArgumentParser(
        description="Compare a GPU run and a CPU run of the analysis from their JSON records alone: speedups "
                    "stage by stage with window ranges (like-for-like and best-vs-best), what bounds the "
                    "end-to-end speedup, efficiency (memory, power, images per joule, cost), dashboards and a "
                    "Markdown report.",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG)
    p.add_argument("--gpu", metavar="DIR", default=None,
                   help="GPU result tree (a gpu_results folder, or its metrics/) [default: <results-dir>/gpu_results]")
    p.add_argument("--cpu", metavar="DIR", default=None,
                   help="CPU result tree (a cpu_results folder, or its metrics/) [default: <results-dir>/cpu_results]")
    p.add_argument("--replot", action="store_true",
                   help="redraw every figure and the report from <results-dir>/comparison_results/metrics alone "
                        "(reads no input tree; prices come from the records)")
    add_config_flags(p, ["RESULTS_DIR", "GPU_PRICE_PER_HOUR", "CPU_PRICE_PER_HOUR"])
    return p


def _render(records, root: Path) -> None:
    from common.comparison.report import write_report
    from common.plots.comparison import plot_all
    from common.tree_outputs import finish_tree

    plot_all(records, root)
    finish_tree(root, "gpu_cpu_", write_report(records, root))  # + the HTML report and csv/


@run_main
def main(argv: list[str] | None = None) -> int:
    from common.cli import explicit_flags, validate_config, values_from_args
    from common.comparison import COMPARISON_DIR

    parser = build_parser()
    args = parser.parse_args(argv)
    values = values_from_args(args, explicit_flags(parser, argv))
    validate_config(values)
    results = Path(values["RESULTS_DIR"])
    out = results / COMPARISON_DIR
    from common.runlock import run_guard

    with run_guard(out):  # one writer of comparison_results at a time; SIGTERM unwinds like Ctrl-C
        return _compare(args, values, results, out)


def _compare(args, values, results: Path, out: Path) -> int:
    from common.comparison import REPORT
    from common.comparison.output import load_comparison_records, write_comparison

    if args.replot:
        if args.gpu or args.cpu:
            raise UserError("--replot redraws from comparison_results/metrics alone; drop --gpu/--cpu, or run "
                            "without --replot to compare new trees")
        records = load_comparison_records(out)
        write_comparison(results, records, _render)
        print(f"replotted the comparison from {out / 'metrics'}; report: {out / REPORT}")
        return 0

    from common.comparison.compute import comparison_environment, compute_all
    from common.comparison.load import gpu_skipped, load_inputs, resolve_tree
    from common.records import Record

    gpu_root = resolve_tree(args.gpu or results / "gpu_results", "cuda")
    reason = gpu_skipped(gpu_root)
    if reason is not None:
        print(f"GPU analysis was skipped: {reason}; nothing to compare")
        return 0
    cpu_root = resolve_tree(args.cpu or results / "cpu_results", "cpu")
    inputs = load_inputs(gpu_root, cpu_root)  # every check happens here, before anything is written
    from common.measure import stats

    try:
        with stats.using(values["BOOTSTRAP_RESAMPLES"], values["UNSTABLE_IQR_FRACTION"]):
            data = compute_all(inputs, {"gpu": values["GPU_PRICE_PER_HOUR"], "cpu": values["CPU_PRICE_PER_HOUR"]})
    except (KeyError, IndexError, TypeError) as exc:  # a field the validation does not cover
        raise UserError(f"{gpu_root / 'metrics'} or {cpu_root / 'metrics'}: a record lacks a field the comparison "
                        f"needs ({type(exc).__name__}: {exc}); re-run the analysis that wrote it") from None
    used = ("RESULTS_DIR", "GPU_PRICE_PER_HOUR", "CPU_PRICE_PER_HOUR", "BOOTSTRAP_RESAMPLES", "UNSTABLE_IQR_FRACTION")
    env = comparison_environment(inputs, {k: values[k] for k in used})
    records = {kind: Record(kind=kind, device="gpu_vs_cpu", data=d, environment=env, notes=list(inputs.notes))
               for kind, d in data.items()}
    write_comparison(results, records, _render)
    print(f"compared {gpu_root} (GPU) with {cpu_root} (CPU)")
    for note in inputs.notes:
        print(f"  note: {note}")
    for v in data["comparison_summary"]["verdicts"][:3]:
        print(f"  - {v['text']}")
    print(f"report: {out / REPORT}")
    return 0
