"""Figures of the GPU vs CPU comparison: pure plotters, comparison records in, PNG files out.
Every figure names both machines and dates in its title, states units, and draws each speedup
with its window range (the spread of timed windows, not a confidence interval).
One module per folder of comparison_results/ (``base`` holds what they share)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from common.plots.comparison.dashboard import dashboard
from common.plots.comparison.efficiency import efficiency_figure, performance_comparison_figure, radar_figure
from common.plots.comparison.sections import augmentation_figure, pipeline_figure
from common.plots.comparison.summary import headline_figure, overview_figure
from common.plots.comparison.utilization import utilization_figure


def plot_all(records: dict[str, Any], root: Path) -> list[Path]:
    """Draw every comparison figure under ``root`` (comparison_results/ or its staging folder)."""
    perf = records["comparison_performance"]
    eff = records["comparison_efficiency"]
    summary = records["comparison_summary"]
    return [
        dashboard(perf, root / "performance_comparison" / "gpu_cpu_performance_dashboard.png"),
        utilization_figure(records["comparison_utilization"],
                           root / "utilization_comparison" / "gpu_cpu_utilization_comparison.png"),
        augmentation_figure(records["comparison_augmentation"],
                            root / "augmentation_comparison" / "gpu_cpu_augmentation_comparison.png"),
        pipeline_figure(records["comparison_pipeline"],
                        root / "pipeline_comparison" / "gpu_cpu_pipeline_comparison.png"),
        efficiency_figure(eff, root / "visualizations" / "gpu_cpu_efficiency_analysis.png"),
        performance_comparison_figure(eff, root / "visualizations" / "gpu_cpu_performance_comparison.png"),
        radar_figure(eff, root / "visualizations" / "gpu_cpu_radar_chart.png"),
        headline_figure(summary, root / "reports" / "gpu_cpu_headline_speedups.png"),
        overview_figure(summary, root / "metrics" / "gpu_cpu_comparison_overview.png"),
    ]
