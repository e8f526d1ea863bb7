"""The suite as a Python API: thin faces over the engine the scripts run.

    from common.api import ComprehensiveCPUAnalyzer, EnhancedGPUCPUComparator
    analyzer = ComprehensiveCPUAnalyzer(results_dir="results", quick=True)
    records = analyzer.create_custom_analysis(sections=["performance_analysis"], batch_size=64)
    records = analyzer.analyze_custom_pipeline(my_pipeline)      # see common/pipeline_protocol.py
    EnhancedGPUCPUComparator(results_dir="results").create_custom_comparison()

Settings are config.py's constants, by their name in any case (``batch_size=64`` or
``BATCH_SIZE=64``), given to the constructor (for every call) or to one call; invalid values are
refused before any work, naming the constant, as on the command line. Each call writes the same
results tree as the scripts and returns its records {kind: Record}.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from common.errors import UserError
from common.records import Record, load_record


def _set_args(settings: dict[str, Any]) -> list[str]:
    import config

    argv = []
    for key, value in settings.items():
        name = key.upper()
        if not hasattr(config, name):
            raise UserError(f"{key}=...: config.py has no constant {name}")
        if isinstance(value, list):
            value = tuple(value)
        if isinstance(value, Path):
            value = str(value)
        argv += ["--set", f"{name}={value!r}"]
    return argv


def run_engine(argv: list[str], device_kind: str) -> int:
    """The one call into the analysis engine (what comprehensive_*_analysis.py run)."""
    from common.analysis.engine import run

    return run(argv, device_kind)


def load_tree_records(metrics: Path) -> dict[str, Record]:
    """Every record of a metrics/ folder by kind (the trace and the report index are not records)."""
    out: dict[str, Record] = {}
    for path in sorted(Path(metrics).glob("*.json")):
        if path.name.endswith(("trace.json", "report_index.json")):
            continue
        rec = load_record(path)
        out[rec.kind] = rec
    return out


class _Analyzer:
    device_kind = "cpu"

    def __init__(self, results_dir: str | Path | None = None, data_dir: str | Path | None = None,
                 quick: bool = False, progress: bool = False, **settings: Any):
        import config

        self.results_dir = Path(results_dir or config.RESULTS_DIR)
        self.data_dir = Path(data_dir or config.DATA_DIR)
        self.quick = quick
        self.progress = progress
        self.settings = dict(settings)
        _set_args(self.settings)  # unknown names fail here, at construction

    @property
    def root(self) -> Path:
        from common.layout import tree_name

        return self.results_dir / tree_name(self.device_kind)

    def _argv(self, sections: list[str] | str | None, settings: dict[str, Any]) -> list[str]:
        argv = ["--results-dir", str(self.results_dir), "--data-dir", str(self.data_dir)]
        if self.quick:
            argv.append("--quick")
        if not self.progress:
            argv.append("--no-progress")
        if sections:
            argv += ["--sections", sections if isinstance(sections, str) else ",".join(sections)]
        return argv + _set_args({**self.settings, **settings})

    def create_custom_analysis(self, sections: list[str] | str | None = None, **settings: Any) -> dict[str, Record]:
        """Run the analysis (all sections, or ``sections``) with these settings; its records by kind.
        Raises UserError on bad settings or data, RuntimeError when a section failed."""
        rc = run_engine(self._argv(sections, settings), self.device_kind)
        records = load_tree_records(self.root / "metrics")
        if rc != 0:
            failed = [k for k, r in records.items() if r.status == "error"]
            raise RuntimeError(f"analysis finished with exit code {rc}; failed section(s): {', '.join(failed)} "
                               f"(see {self.root / 'metrics'}/*_error.txt)")
        return records

    def resolve_settings(self, **settings: Any):
        """The frozen Settings these arguments give (config.py + constructor + call)."""
        from common.analysis.engine import build_parser
        from common.analysis.settings import Settings
        from common.cli import explicit_flags, validate_config, values_from_args

        parser = build_parser(self.device_kind)
        argv = self._argv(None, settings)
        values = values_from_args(parser.parse_args(argv), explicit_flags(parser, argv))
        validate_config(values)
        return Settings.resolve(values, self.device_kind, self.quick)

    def analyze_custom_pipeline(self, pipeline: Any, **settings: Any) -> dict[str, Record]:
        """Measure your pipeline (common/pipeline_protocol.py) and write its tree under
        <results_dir>/custom_pipelines/<name>/; its records by kind."""
        from common.analysis.custom_run import analyze_pipeline

        if self.device_kind == "cuda":
            import torch

            if not torch.cuda.is_available():
                raise UserError("ComprehensiveGPUAnalyzer: no CUDA device on this machine (torch.cuda.is_available() "
                                "is False); use ComprehensiveCPUAnalyzer")
        return analyze_pipeline(pipeline, self.resolve_settings(**settings), self.device_kind, self.progress)


class ComprehensiveGPUAnalyzer(_Analyzer):
    """The analysis on device "cuda" (what comprehensive_gpu_analysis.py runs). Without CUDA,
    create_custom_analysis writes gpu_status.json and returns it, as the script does."""

    device_kind = "cuda"


class ComprehensiveCPUAnalyzer(_Analyzer):
    """The analysis on device "cpu" (what comprehensive_cpu_analysis.py runs)."""

    device_kind = "cpu"


class EnhancedGPUCPUComparator:
    """The GPU vs CPU comparison from two trees' records (what enhanced_gpu_cpu_comparison.py runs)."""

    def __init__(self, results_dir: str | Path | None = None, gpu: str | Path | None = None,
                 cpu: str | Path | None = None, gpu_price_per_hour: float | None = None,
                 cpu_price_per_hour: float | None = None):
        import config

        self.results_dir = Path(results_dir or config.RESULTS_DIR)
        self.gpu, self.cpu = gpu, cpu
        self.prices = {"GPU_PRICE_PER_HOUR": gpu_price_per_hour, "CPU_PRICE_PER_HOUR": cpu_price_per_hour}

    def create_custom_comparison(self, replot: bool = False) -> dict[str, Record]:
        """Compare (or with ``replot`` redraw); the comparison records by kind, or {} when the GPU
        analysis was skipped (no CUDA on its machine: nothing to compare)."""
        from common.comparison import COMPARISON_DIR
        from common.comparison.runner import main

        argv = ["--results-dir", str(self.results_dir)]
        argv += ["--gpu", str(self.gpu)] if self.gpu else []
        argv += ["--cpu", str(self.cpu)] if self.cpu else []
        argv += ["--replot"] if replot else []
        for name, value in self.prices.items():
            if value is not None:
                argv += [f"--{name.lower().replace('_', '-')}", str(value)]
        rc = main.__wrapped__(argv)
        if rc != 0:
            raise RuntimeError(f"comparison finished with exit code {rc}")
        metrics = self.results_dir / COMPARISON_DIR / "metrics"
        return load_tree_records(metrics) if metrics.is_dir() else {}
