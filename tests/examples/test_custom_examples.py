"""The two custom-pipeline examples produce the full results tree on CPU on tiny data, with the
pipeline's name in every record, a valid trace, the HTML report and the CSV exports."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from common.measure.trace import check_trace

REPO = Path(__file__).resolve().parents[2]
TINY = ["--device", "cpu", "--set", "MEASURE_STEPS=2", "--set", "WARMUP_STEPS=1", "--set", "REPEATS=1",
        "--set", "INFERENCE_REPEATS=5", "--set", "SAMPLE_HZ=20", "--set", "CPU_THREADS=1"]  # 1 thread: no
# OpenMP oversubscription on a shared 2-core runner (the tests check the tree, not the speed)
FOLDERS = ["pipeline_deep_dive", "performance_analysis", "augmentation_analysis", "visualizations",
           "utilization_patterns"]


def _example(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "examples" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _run(name: str, argv: list[str]) -> int:
    threads = torch.get_num_threads()
    try:
        return _example(name).main(argv)
    finally:
        torch.set_num_threads(threads)


def check_tree(root: Path, pipeline: str) -> None:
    for folder in FOLDERS:
        assert list((root / folder).glob("cpu_*.png")), folder
        assert list((root / folder).glob("cpu_*.json")), folder
    for rec in (root / "metrics").glob("cpu_*.json"):
        if rec.name == "cpu_trace.json":
            continue
        d = json.loads(rec.read_text())
        assert d["environment"]["pipeline"] == pipeline, rec
        assert d["status"] in ("ok", "skipped"), (rec, d.get("reason"))
    vis = json.loads((root / "metrics" / "cpu_visualizations.json").read_text())
    assert vis["status"] == "skipped" and vis["reason"]
    counts = check_trace(json.loads((root / "metrics" / "cpu_trace.json").read_text()))
    assert counts["X"] > 0 and counts["C"] > 0
    md = (root / "reports" / "cpu_report.md").read_text()
    assert md.startswith(f"# {pipeline}")
    page = (root / "reports" / "cpu_report.html").read_text()
    assert page.count("data:image/png;base64,") == len(list(root.glob("*/cpu_*.png")))
    assert (root / "csv" / "cpu_samples_cpu.csv").is_file()
    assert (root / "csv" / "cpu_performance_analysis__batch_sweep.csv").is_file()


def run_example(name: str, args: list[str], tmp_path: Path, pipeline: str) -> Path:
    """Run example ``name`` with tiny settings; its checked tree."""
    assert _run(name, [*TINY, "--results-dir", str(tmp_path), *args]) == 0
    from common.pipeline_protocol import slug

    root = tmp_path / "custom_pipelines" / slug(pipeline) / "cpu_results"
    check_tree(root, pipeline)
    return root


def data_of(root: Path, kind: str) -> dict:
    return json.loads((root / "metrics" / f"cpu_{kind}.json").read_text())["data"]


def test_classifier_example_on_the_embedded_subset(tmp_path):
    root = run_example("custom_pipeline_classifier", ["--max-per-class", "3", "--size", "32", "--batch-size", "4",
                                                      "--width", "4", "--set", "BATCH_SIZES=2,4"],
                       tmp_path, "embedded MedNIST subset CNN classifier")
    perf = data_of(root, "performance_analysis")
    assert [r["batch_size"] for r in perf["batch_sweep"]] == [2, 4]
    assert perf["levers"]["inference_batch1"]["cuda_graph"]["skipped"] == "CUDA graphs need a CUDA device"
    assert data_of(root, "augmentation_analysis")["order"] == ["decode", "resize", "to_tensor", "normalize"]


def test_classifier_example_refuses_a_folder_without_classes(tmp_path, capsys):
    (tmp_path / "imgs").mkdir()
    assert _run("custom_pipeline_classifier", [*TINY, "--images", str(tmp_path / "imgs")]) == 2
    assert "one folder of images per class" in capsys.readouterr().err


def test_segmentation_example_on_mni152_patches(tmp_path):
    pytest.importorskip("monai")
    root = run_example("custom_pipeline_segmentation", ["--patch", "16", "--patches", "4", "--batch-size", "2",
                                                        "--channels", "4,8", "--set", "BATCH_SIZES=1,2"],
                       tmp_path, "MNI152 UNet3D segmentation")
    deep = data_of(root, "pipeline_deep_dive")
    assert set(deep["configs"]) == {"as_given", "device_resident"}
    assert {"forward", "backward", "optimizer", "data_wait"} <= set(deep["configs"]["as_given"]["stages_s"])
