"""Names of the results tree and the registry of the analysis sections.

Light on purpose: it imports nothing but the standard library (no torch, numpy or matplotlib),
so the comparison, the reports and ``--replot`` can name files without loading a framework.

Adding a section: write its package ``common/sections/<name>/`` (its modules and the functions
they define are named in ``common/sections/__init__.py``), then add one line to ``SECTIONS``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from common import sections as _sections

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
    """One section of the analysis: where its record and figures go, and its package, whose parts
    (measure, plot, compare, key_numbers) are found by the convention of ``common.sections``.
    Naming a section or one of its modules imports nothing."""

    name: str  # the record kind, and the package's name in common/sections/
    folder: str | None = None  # relative to the tree root ('' = the root itself); None = the name
    package: str = ""  # '' = common.sections.<name>

    def __post_init__(self):
        if self.folder is None:
            object.__setattr__(self, "folder", self.name)
        if not self.package:
            object.__setattr__(self, "package", f"{_sections.PACKAGE}.{self.name}")

    def module(self, part: str) -> str:
        """The dotted name of the part's module ('measure', 'plot', 'compare', 'key_numbers')."""
        if part not in _sections.PARTS:
            raise KeyError(f"{part!r} is not a part of a section; parts: {', '.join(_sections.PARTS)}")
        return f"{self.package}.{part}"

    def entry(self, part: str):
        """The part's function (imports its module now); None where an optional part is absent."""
        return _sections.entry_point(self.package, part)

    @property
    def summary(self) -> str:
        """What the section does, in one line (its package's docstring)."""
        import importlib

        return (importlib.import_module(self.package).__doc__ or "").strip().splitlines()[0]


# one line per section, in the order they run (the utilization section runs last: it reads the others' spans)
SECTIONS: tuple[Section, ...] = (
    Section("visualizations"),
    Section("augmentation_analysis"),
    Section("pipeline_deep_dive"),
    Section("performance_analysis"),
    Section("winning_solution", folder=""),
    Section("scaling", folder="performance_analysis"),
    Section("utilization_patterns"),
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

