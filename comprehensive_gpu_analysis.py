#!/usr/bin/env python3
"""GPU analysis: the suite's analysis engine on device "cuda". Writes
comprehensive_gpu_cpu_analysis_results/gpu_results/ (see README.md). Without CUDA it says so
in one line, writes metrics/gpu_status.json and exits 0 so a batch run goes on. Run with --help."""

import sys

from common.analysis.engine import main_for
from common.api import ComprehensiveCPUAnalyzer, ComprehensiveGPUAnalyzer  # noqa: F401  (the Python API)

main = main_for("cuda")

if __name__ == "__main__":
    sys.exit(main())
