"""Names of the results tree and the registry of the analysis sections.

Light on purpose: it imports nothing but the standard library (no torch, numpy or matplotlib),
so the comparison, the reports and ``--replot`` can name files without loading a framework.

Adding a section: write its measure module (``measure(ctx) -> data``), its plot module
(``plot(record, arrays, out_dir, name) -> [paths]``) and, where it has them, its comparison part
(``speedups(gpu_run, cpu_run, out, skipped)``) and its key numbers (``key_numbers(record) ->
[(label, text)]``); then add one line to ``SECTIONS``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

GPU_TREE = "gpu_results"
CPU_TREE = "cpu_results"
GPU_FILE_NAMES = frozenset({  # the README's names for the GPU tree; everything else gets the device prefix
    "demo_medical_report_visualization.png",
    "demo_comparison_visualization.png",
    "winning_solution_analysis.png",
})
METRICS = "metrics"  # every record's canonical copy, and the arrays they refer to
REPORTS = "reports"


def file_name(device: str, name: str) -> str:
    """gpu_results: README names as they are, others 'gpu_<name>'; cpu_results: 'cpu_<name>'."""
    if device == "cuda":
        return name if name in GPU_FILE_NAMES else f"gpu_{name}"
    return f"cpu_{name}"


def tree_name(device: str) -> str:
    return GPU_TREE if device == "cuda" else CPU_TREE


def record_base(kind: str) -> str:
    """The record's file name before the device prefix (the winning solution keeps its README name)."""
    return "winning_solution_analysis.json" if kind == "winning_solution" else f"{kind}.json"


def record_file(root: Path, device: str, kind: str) -> Path:
    """The canonical record of ``kind`` in ``<tree>/metrics/``."""
    return Path(root) / METRICS / file_name(device, record_base(kind))


def record_paths(root: Path, device: str, kind: str, folder: str) -> tuple[Path, Path]:
    """(canonical record in metrics/, copy beside the section's figures)."""
    name = file_name(device, record_base(kind))
    return Path(root) / METRICS / name, Path(root) / folder / name


def arrays_path(root: Path, device: str, kind: str) -> Path:
    return Path(root) / METRICS / file_name(device, f"{kind}_arrays.npz")


def summary_path(root: Path, device: str) -> Path:
    return Path(root) / METRICS / file_name(device, "run_summary.json")


@dataclass(frozen=True)
class Section:
    """One section of the analysis: where its record and figures go and which modules do its parts.
    Module parts are dotted paths ('module' or 'module:function') so that naming them imports nothing."""

    name: str  # the record kind
    folder: str  # relative to the tree root ('' = the root itself)
    measure: str  # module with measure(ctx) -> data
    plot: str  # module with plot(record, arrays, out_dir, name) -> [paths]
    comparison: str | None = None  # 'module:function(gpu_run, cpu_run, out, skipped)' adding speedup entries
    key_numbers: str | None = None  # 'module:function(record) -> [(label, text)]' for the report
    summary: str = ""  # what the section does, in one line (--help, report)


# one line per section, in the order they run (the utilization section runs last: it reads the others' spans)
SECTIONS: tuple[Section, ...] = (
    Section("visualizations", "visualizations", "common.analysis.visualizations", "common.plots.visualizations",
            "common.comparison.sections.volume3d:speedups", "common.key_numbers:volume3d",
            "3D volume: trains a 3D UNet on the volume's tissue maps, sliding-window segmentation, renderings"),
    Section("augmentation_analysis", "augmentation_analysis", "common.analysis.augmentation",
            "common.plots.augmentation", "common.comparison.sections.augmentation:speedups",
            "common.key_numbers:augmentation",
            "the tutorial's augmentation chain per sample (MONAI) and batched on the device, with its quality"),
    Section("pipeline_deep_dive", "pipeline_deep_dive", "common.analysis.pipeline", "common.plots.pipeline",
            "common.comparison.sections.pipeline:speedups", "common.key_numbers:pipeline",
            "the training step stage by stage (data, transfer, model), recipe and device-resident"),
    Section("performance_analysis", "performance_analysis", "common.analysis.performance", "common.plots.performance",
            "common.comparison.sections.performance:speedups", "common.key_numbers:performance",
            "batch-size and precision sweeps, inference latency and throughput"),
    Section("winning_solution", "", "common.analysis.winning", "common.plots.winning",
            "common.comparison.sections.training:speedups", "common.key_numbers:winning",
            "the optimization ladder from the tutorial recipe, accuracy-gated; its winner"),
    Section("scaling", "performance_analysis", "common.analysis.scaling", "common.plots.scaling",
            None, "common.key_numbers:scaling", "data-parallel training on 1..N GPUs (torchrun + DDP) or CPU processes"),
    Section("utilization_patterns", "utilization_patterns", "common.analysis.utilization", "common.plots.utilization",
            None, None, "device and host utilization over the whole run, per stage"),
)
SECTION_NAMES = tuple(s.name for s in SECTIONS)
ALWAYS_LAST = "utilization_patterns"
# the order in which the report's key numbers and the comparison's speedups present the sections (headline
# first); a section not named here follows in run order
PRESENTATION_ORDER = ("winning_solution", "pipeline_deep_dive", "performance_analysis", "augmentation_analysis",
                      "visualizations")


def presented() -> list[Section]:
    """The sections in PRESENTATION_ORDER."""
    rank = {name: i for i, name in enumerate(PRESENTATION_ORDER)}
    return sorted(SECTIONS, key=lambda s: rank.get(s.name, len(rank)))


def section(name: str) -> Section:
    return next(s for s in SECTIONS if s.name == name)


def resolve(ref: str):
    """The function a 'module:function' reference names (imports the module now)."""
    import importlib

    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)
