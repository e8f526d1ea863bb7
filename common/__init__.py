"""Library shared by the suite's scripts: data, transforms, models, workloads, measurement,
analysis sections, plots and reports."""

__all__ = ["ComprehensiveGPUAnalyzer", "ComprehensiveCPUAnalyzer", "EnhancedGPUCPUComparator", "CustomPipeline"]


def __getattr__(name: str):  # lazy: importing common stays light (no torch) until the API is used
    if name in ("ComprehensiveGPUAnalyzer", "ComprehensiveCPUAnalyzer", "EnhancedGPUCPUComparator"):
        from common import api

        return getattr(api, name)
    if name == "CustomPipeline":
        from common.pipeline_protocol import CustomPipeline

        return CustomPipeline
    raise AttributeError(f"module 'common' has no attribute {name!r}")
