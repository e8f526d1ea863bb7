"""GPU vs CPU comparison from the JSON records of two result trees (never from measuring).

``load``     find the two trees, refuse what cannot be compared (one line naming the file)
``compute``  comparison records from the input records: pure, dicts in, dicts out
``report``   the Markdown report from the comparison records alone
``output``   the layout of comparison_results/ and writing it all-or-nothing

Each section's own speedups are its ``compare`` module (``common/sections/<name>/compare.py``).

Layout of ``<results>/comparison_results/``: every folder holds its figures and the record they are
drawn from; metrics/ holds every record (the canonical copies that ``--replot`` reads).
"""

from __future__ import annotations

COMPARISON_DIR = "comparison_results"

# record kind -> (folder of the copy beside its figures, file name; the canonical copy is metrics/<same name>)
RECORDS: dict[str, tuple[str, str]] = {
    "comparison_performance": ("performance_comparison", "gpu_cpu_performance_stats.json"),
    "comparison_utilization": ("utilization_comparison", "gpu_cpu_utilization_comparison.json"),
    "comparison_augmentation": ("augmentation_comparison", "gpu_cpu_augmentation_comparison.json"),
    "comparison_pipeline": ("pipeline_comparison", "gpu_cpu_pipeline_comparison.json"),
    "comparison_efficiency": ("visualizations", "gpu_cpu_efficiency_comparison.json"),
    "comparison_summary": ("reports", "gpu_cpu_comparison_summary.json"),
}

# figure file (relative to comparison_results/) -> the record kinds it is drawn from
FIGURES: dict[str, tuple[str, ...]] = {
    "performance_comparison/gpu_cpu_performance_dashboard.png": ("comparison_performance",),
    "utilization_comparison/gpu_cpu_utilization_comparison.png": ("comparison_utilization",),
    "augmentation_comparison/gpu_cpu_augmentation_comparison.png": ("comparison_augmentation",),
    "pipeline_comparison/gpu_cpu_pipeline_comparison.png": ("comparison_pipeline",),
    "visualizations/gpu_cpu_efficiency_analysis.png": ("comparison_efficiency",),
    "visualizations/gpu_cpu_performance_comparison.png": ("comparison_efficiency",),
    "visualizations/gpu_cpu_radar_chart.png": ("comparison_efficiency",),
    "reports/gpu_cpu_headline_speedups.png": ("comparison_summary",),
    "metrics/gpu_cpu_comparison_overview.png": ("comparison_summary",),
}

REPORT = "reports/gpu_cpu_comparison_report.md"

LIKE_FOR_LIKE = "like-for-like"
BEST_VS_BEST = "best-vs-best"

