#!/usr/bin/env python3
"""CPU analysis: the suite's analysis engine on device "cpu". Writes
comprehensive_gpu_cpu_analysis_results/cpu_results/ (see README.md). Run with --help."""

import sys

from common.analysis.engine import main_for
from common.api import ComprehensiveCPUAnalyzer, ComprehensiveGPUAnalyzer  # noqa: F401  (the Python API)

main = main_for("cpu")

if __name__ == "__main__":
    sys.exit(main())
