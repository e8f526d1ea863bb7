#!/usr/bin/env python3
"""GPU vs CPU comparison from the JSON records of two result trees (nothing is measured here).

Reads <results-dir>/gpu_results and <results-dir>/cpu_results (or --gpu DIR --cpu DIR, from any
machines or days) and writes <results-dir>/comparison_results/: per-stage speedups with 95%
intervals (like-for-like and best-vs-best), pipeline bounds (Amdahl), augmentation, utilization,
efficiency (memory, power, images per joule, cost), dashboards and a Markdown report.

If the GPU tree holds only metrics/gpu_status.json with status "skipped" (the GPU analysis ran on a
machine without CUDA), it prints one line and exits 0 without writing anything, so a batch run
(GPU analysis, CPU analysis, comparison) still succeeds on CPU-only machines. Run with --help."""

from __future__ import annotations

import sys

from common.api import EnhancedGPUCPUComparator  # noqa: F401  (the Python API)
from common.comparison.runner import EPILOG, build_parser, main  # noqa: F401

if __name__ == "__main__":
    sys.exit(main())
