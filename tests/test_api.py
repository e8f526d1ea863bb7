"""The Python API: the README's example runs as written; the analyzers are faces over the engine
(settings by config name, refused when unknown); the comparator says when there is nothing to compare;
a pipeline that leaves parts out gets those parts skipped with the reason."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from common import ComprehensiveCPUAnalyzer, CustomPipeline, EnhancedGPUCPUComparator
from common.errors import UserError

REPO = Path(__file__).resolve().parents[1]


def _readme_api_block() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Python API"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_readme_api_example_runs(tmp_path, monkeypatch, capsys):
    code = _readme_api_block()
    assert len(code.strip().splitlines()) <= 10
    monkeypatch.chdir(tmp_path)
    import config

    monkeypatch.setattr(config, "CPU_THREADS", 1)  # a shared 2-core runner: no OpenMP oversubscription
    threads = torch.get_num_threads()
    try:
        exec(compile(code, "README.md", "exec"), {})
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    assert "'bottleneck'" in out
    root = tmp_path / "results" / "custom_pipelines" / "linear_probe_on_random_tensors" / "cpu_results"
    assert (root / "reports" / "cpu_report.html").is_file()
    tr = json.loads((root / "metrics" / "cpu_augmentation_analysis.json").read_text())
    assert tr["status"] == "skipped" and tr["reason"] == "the pipeline gives no transforms to time"


def test_inference_only_pipeline_skips_training_with_the_reason(tmp_path):
    model = torch.nn.Linear(8, 2)
    p = CustomPipeline(name="probe", infer_fn=model, example_input=torch.rand(4, 8))
    recs = ComprehensiveCPUAnalyzer(results_dir=tmp_path, measure_steps=2, repeats=1, cpu_threads=1,
                                    inference_repeats=5, batch_sizes=(1, 2)).analyze_custom_pipeline(p)
    assert recs["pipeline_deep_dive"].status == "skipped"
    assert "loss_fn" in recs["pipeline_deep_dive"].reason and "optimizer" in recs["pipeline_deep_dive"].reason
    perf = recs["performance_analysis"]
    assert perf.status == "ok", perf.reason
    assert perf.data["batch_sweep_skipped"] and perf.data["inference_latency"]["p50_ms"] > 0
    assert all(v.get("skipped") for v in perf.data["levers"]["training"].values())


def test_unknown_setting_and_bad_pipeline_are_refused():
    with pytest.raises(UserError, match="config.py has no constant NO_SUCH"):
        ComprehensiveCPUAnalyzer(no_such=1)
    with pytest.raises(UserError, match="neither a model nor an infer_fn"):
        ComprehensiveCPUAnalyzer().analyze_custom_pipeline(CustomPipeline(name="empty"))


def test_create_custom_analysis_runs_the_engine_and_returns_records(tmp_path, synthetic_data_dir):
    a = ComprehensiveCPUAnalyzer(results_dir=tmp_path, data_dir=synthetic_data_dir, quick=True,
                                 quick_inference_repeats=5, quick_cpu_max_train_images=48, num_workers=0,
                                 cpu_threads=1)
    assert a.resolve_settings(batch_size=16).batch_size == 16
    with pytest.raises(UserError, match="BATCH_SIZE"):
        a.create_custom_analysis(sections=["augmentation_analysis"], batch_size=0)
    recs = a.create_custom_analysis(sections=["augmentation_analysis"])
    assert recs["augmentation_analysis"].status == "ok"
    assert recs["run_summary"].data["sections"]["augmentation_analysis"]["status"] == "ok"
    assert (tmp_path / "cpu_results" / "reports" / "cpu_report.html").is_file()


def test_comparator_with_a_skipped_gpu_run_returns_nothing(tmp_path):
    metrics = tmp_path / "gpu_results" / "metrics"
    metrics.mkdir(parents=True)
    from common.records import Record, save_record

    save_record(metrics / "gpu_status.json", Record(kind="gpu_status", device="cuda", data={}, status="skipped",
                                                    reason="no CUDA"))
    assert EnhancedGPUCPUComparator(results_dir=tmp_path).create_custom_comparison() == {}
