"""enhanced_gpu_cpu_comparison.py: the comparison of a GPU and a CPU result tree, from JSON alone.

The CPU tree is a small fixture cut from a real quick CPU run (tests/fixtures/comparison/cpu_results,
made by make_fixtures.py); the GPU tree is built from it by fake_gpu.py (there is no GPU here).
The full comparison (with every figure) runs once per module; error cases stop before drawing."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from common.comparison import BEST_VS_BEST, COMPARISON_DIR, FIGURES, LIKE_FOR_LIKE, RECORDS, REPORT
from common.measure.stats import ratio

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "comparison"
REQUIRED_FILES = [
    "performance_comparison/gpu_cpu_performance_dashboard.png",
    "performance_comparison/gpu_cpu_performance_stats.json",
    "visualizations/gpu_cpu_efficiency_analysis.png",
    "visualizations/gpu_cpu_performance_comparison.png",
    "visualizations/gpu_cpu_radar_chart.png",
]
FOLDERS = ["performance_comparison", "utilization_comparison", "augmentation_comparison", "pipeline_comparison",
           "reports", "metrics", "visualizations"]


def _fake_gpu():
    spec = importlib.util.spec_from_file_location("fake_gpu", FIXTURES / "fake_gpu.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def make_trees(root: Path) -> Path:
    """<root>/cpu_results (fixture copy) and <root>/gpu_results (GPU-like, built from it)."""
    shutil.copytree(FIXTURES / "cpu_results", root / "cpu_results")
    _fake_gpu().make_gpu_tree(root / "cpu_results", root / "gpu_results")
    return root


def run(argv: list[str]) -> int:
    from enhanced_gpu_cpu_comparison import main

    return main(argv)


# runs the comparison's main() in a fresh interpreter and reports the heavy modules it loaded
_SUBPROCESS = """
import json, sys
from enhanced_gpu_cpu_comparison import main
rc = main(sys.argv[1:])
print(json.dumps({"rc": rc, "heavy": sorted(m for m in ("torch", "monai", "triton") if m in sys.modules)}))
"""


@pytest.fixture(scope="module")
def compared(tmp_path_factory) -> Path:
    """The full comparison of the fixture trees, run as the script runs (its own process)."""
    results = make_trees(tmp_path_factory.mktemp("results"))
    proc = subprocess.run([sys.executable, "-c", _SUBPROCESS, "--results-dir", str(results),
                           "--gpu-price-per-hour", "2.5"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["rc"] == 0, proc.stdout[-3000:]
    (results / "heavy_modules.json").write_text(json.dumps(out["heavy"]))
    return results


def test_the_comparison_imports_no_torch(compared):
    """The comparison reads JSON only: it must run where torch is not installed (nor loaded)."""
    assert json.loads((compared / "heavy_modules.json").read_text()) == []


@pytest.fixture()
def trees(tmp_path) -> Path:
    return make_trees(tmp_path / "results")


def _values(tree: Path, side: dict) -> np.ndarray:
    rec = json.loads((tree / "metrics" / side["file"]).read_text())
    total = None
    for path in side["paths"]:
        v = rec
        for p in path:
            v = v[p]
        arr = np.atleast_1d(np.asarray(v, dtype=float))
        total = arr if total is None else total + arr
    return total * side["scale"]


# --- a GPU tree and a CPU tree in, every file out ---------------------------------------------------------


def test_every_file_exists_and_every_folder_has_a_figure_and_its_record(compared):
    out = compared / COMPARISON_DIR
    for rel in REQUIRED_FILES + list(FIGURES) + [REPORT]:
        assert (out / rel).is_file(), rel
        assert (out / rel).stat().st_size > 0, rel
    for folder, name in RECORDS.values():
        assert (out / folder / name).is_file()
        assert (out / "metrics" / name).is_file()
    for folder in FOLDERS:
        files = list((out / folder).iterdir())
        assert any(f.suffix == ".png" for f in files), folder
        assert any(f.suffix == ".json" for f in files), folder
    assert not list(compared.glob(f".{COMPARISON_DIR}.staging-*")), "staging folder left behind"


def test_every_speedup_equals_the_ratio_recomputed_from_the_input_records(compared):
    stats = json.loads((compared / COMPARISON_DIR / "performance_comparison" /
                        "gpu_cpu_performance_stats.json").read_text())
    assert stats["kind"] == "comparison_performance"
    entries = stats["data"]["speedups"]
    assert len(entries) > 20
    for e in entries:
        assert e["kind"] in (LIKE_FOR_LIKE, BEST_VS_BEST), e["id"]
        assert e["gpu"]["config"] and e["cpu"]["config"], e["id"]
        g = _values(compared / "gpu_results", e["gpu"])
        c = _values(compared / "cpu_results", e["cpu"])
        r = ratio(g, c) if e["numerator"] == "gpu" else ratio(c, g)
        assert e["speedup"] == pytest.approx(r.value, rel=1e-9), e["id"]
        assert e["ci95"] == pytest.approx(list(r.ci95), rel=1e-9), e["id"]
        assert e["ci95"][0] <= e["speedup"] <= e["ci95"][1], e["id"]
    ids = {e["id"]: e for e in entries}
    # like-for-like: the tutorial recipe (rung 0), the device-resident pipeline, a shared batch size,
    # per-stage times of the same configuration; best-vs-best: each device's winning ladder rung
    assert ids["training.ladder.recipe.end_to_end"]["kind"] == LIKE_FOR_LIKE
    assert ids["pipeline.device_resident.end_to_end"]["kind"] == LIKE_FOR_LIKE
    assert ids["performance.batch_sweep.8"]["kind"] == LIKE_FOR_LIKE
    assert ids["pipeline.tutorial_recipe.stage.forward"]["kind"] == LIKE_FOR_LIKE
    assert ids["pipeline.tutorial_recipe.stage.forward"]["gpu"]["unit"] == "ms/image"
    win = ids["training.winner.end_to_end"]
    assert win["kind"] == BEST_VS_BEST
    assert "CUDA graph" in win["gpu"]["config"] and "MONAI tutorial recipe" in win["cpu"]["config"]
    # configurations measured on one device only are not compared (GPU-only batch 16, fp16, bf16 latency)
    assert "performance.batch_sweep.16" not in ids
    assert "inference.latency_batch1.bf16" not in ids
    # settings that differ are stated
    assert ids["pipeline.device_resident.end_to_end"]["differences"]["precision"] == {"gpu": "bf16", "cpu": "fp32"}


def test_report_states_the_kind_of_each_comparison_and_links_every_figure(compared):
    out = compared / COMPARISON_DIR
    report = (out / REPORT).read_text()
    verdicts = report.split("## Verdicts", 1)[1].split("\n## ", 1)[0]
    lines = [ln for ln in verdicts.splitlines() if ln.startswith("- ")]
    speed_lines = [ln for ln in lines if re.search(r"\d+(\.\d+)?x (faster|slower|higher|lower)", ln)]
    assert len(speed_lines) >= 5
    for ln in speed_lines:
        assert f"[{LIKE_FOR_LIKE}" in ln or f"[{BEST_VS_BEST}" in ln, ln
    assert "caps the end-to-end speedup" in verdicts
    for png in out.rglob("*.png"):
        rel = png.relative_to(out).as_posix()
        link = rel[len("reports/"):] if rel.startswith("reports/") else f"../{rel}"
        assert f"]({link})" in report, rel
        assert ((out / "reports") / link).resolve() == png.resolve()
    assert "different machines" in report
    assert "single-GPU run; no scaling data" in report


def test_energy_is_never_invented_and_cost_follows_the_formula(compared):
    eff = json.loads((compared / COMPARISON_DIR / "metrics" / "gpu_cpu_efficiency_comparison.json").read_text())
    cpu_win = eff["data"]["energy"]["cpu"]["winner"]
    gpu_win = eff["data"]["energy"]["gpu"]["winner"]
    assert cpu_win["j_per_image"] is None and cpu_win["images_per_j"] is None
    assert "powercap" in cpu_win["energy_reason"] or "RAPL" in cpu_win["energy_reason"]
    assert gpu_win["images_per_j"] == pytest.approx(1 / gpu_win["j_per_image"])
    gain = next(g for g in eff["data"]["gains"] if g["metric"].startswith("images per joule, winning"))
    assert gain["gain"] is None and gain["reason"]
    cost = eff["data"]["cost"]["configs"]["winner"]
    gpu_rec = json.loads((compared / "gpu_results" / "metrics" / "gpu_winning_solution_analysis.json").read_text())
    rung = gpu_rec["data"]["rungs"][gpu_rec["data"]["summary"]["winner_index"]]
    expect = np.median([2.5 / (v * 3600) * 1e6 for v in rung["images_per_s"]["values"]])
    assert cost["gpu"]["cost_per_million_images"] == pytest.approx(expect)
    assert cost["cpu"]["cost_per_million_images"] is None
    assert "CPU_PRICE_PER_HOUR" in cost["cpu"]["reason"]
    radar = eff["data"]["radar"]
    assert len(radar["axes"]) >= 3 and "normalization" in radar
    assert any(m["name"].startswith("images per joule") for m in radar["missing"])


def test_scaling_list_is_read_when_present(trees):
    from common.comparison.compute import scalability
    from common.comparison.load import load_inputs
    from common.measure.stats import Summary

    path = trees / "gpu_results" / "metrics" / "gpu_performance_analysis.json"
    rec = json.loads(path.read_text())
    rec["data"]["scaling"] = [{"gpus": n, "images_per_s": Summary.from_values([1000.0 * n * f for f in
                                                                               (0.98, 1.0, 1.02)], "img/s").to_dict()}
                              for n in (1, 2, 4)]
    path.write_text(json.dumps(rec))
    scal = scalability(load_inputs(trees / "gpu_results", trees / "cpu_results"))
    assert scal["available"] and [r["gpus"] for r in scal["rows"]] == [1, 2, 4]
    assert scal["rows"][-1]["speedup_vs_1"] == pytest.approx(4.0)
    assert scal["rows"][-1]["efficiency"] == pytest.approx(1.0)


def test_failed_sections_are_stated_not_compared(trees):
    from common.comparison.compute import compute_all
    from common.comparison.load import load_inputs, resolve_tree

    path = trees / "gpu_results" / "metrics" / "gpu_augmentation_analysis.json"
    rec = json.loads(path.read_text())
    rec.update(status="error", reason="RuntimeError: CUDA out of memory", data={})
    path.write_text(json.dumps(rec))
    gpu_root = resolve_tree(trees / "gpu_results" / "metrics", "cuda")  # a metrics/ folder is accepted too
    assert gpu_root == trees / "gpu_results"
    inputs = load_inputs(gpu_root, trees / "cpu_results")
    assert any("gpu_augmentation_analysis.json has status error" in n for n in inputs.notes)
    data = compute_all(inputs, {"gpu": None, "cpu": None})
    assert not any(e["group"].startswith("augmentation") for e in data["comparison_performance"]["speedups"])
    assert "CUDA out of memory" in data["comparison_augmentation"]["reason"]
    assert data["comparison_performance"]["scalability"]["reason"] == "single-GPU run; no scaling data"
    assert any(e["id"] == "training.winner.end_to_end" for e in data["comparison_performance"]["speedups"])
    cost = data["comparison_efficiency"]["cost"]["configs"]["winner"]
    assert cost["gpu"]["cost_per_million_images"] is None and "GPU_PRICE_PER_HOUR" in cost["gpu"]["reason"]


# --- refusals: one clear line, non-zero exit, nothing written -----------------------------------------------


def _refused(results: Path, capsys, *extra: str) -> str:
    rc = run(["--results-dir", str(results), *extra])
    err = capsys.readouterr().err
    assert rc != 0
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert not (results / COMPARISON_DIR).exists()
    assert not list(results.glob(f".{COMPARISON_DIR}*"))
    return err


def test_missing_record_names_the_file(trees, capsys):
    missing = trees / "gpu_results" / "metrics" / "gpu_pipeline_deep_dive.json"
    missing.unlink()
    err = _refused(trees, capsys)
    assert str(missing) in err and "not found" in err


def test_truncated_record_names_the_file(trees, capsys):
    path = trees / "cpu_results" / "metrics" / "cpu_performance_analysis.json"
    path.write_text(path.read_text()[:500])
    err = _refused(trees, capsys)
    assert str(path) in err and "truncated" in err


def test_incomplete_record_names_the_file_and_field(trees, capsys):
    path = trees / "cpu_results" / "metrics" / "cpu_pipeline_deep_dive.json"
    rec = json.loads(path.read_text())
    del rec["data"]["configs"]["tutorial_recipe"]["stages_s"]
    path.write_text(json.dumps(rec))
    err = _refused(trees, capsys)
    assert str(path) in err and "configs.tutorial_recipe.stages_s" in err


def test_schema_versions_must_match(trees, capsys):
    path = trees / "gpu_results" / "metrics" / "gpu_augmentation_analysis.json"
    rec = json.loads(path.read_text())
    rec["schema_version"] = 0
    path.write_text(json.dumps(rec))
    err = _refused(trees, capsys)
    assert "schema version" in err and "gpu_augmentation_analysis.json" in err


def test_different_workloads_are_refused(trees, capsys):
    for path in (trees / "gpu_results" / "metrics").glob("*.json"):
        rec = json.loads(path.read_text())
        rec["environment"]["dataset"]["image_size"] = [128, 128]
        path.write_text(json.dumps(rec))
    err = _refused(trees, capsys)
    assert "image size" in err and "cpu_performance_analysis.json" in err


def test_a_cpu_tree_given_as_gpu_is_named(trees, capsys):
    err = _refused(trees, capsys, "--gpu", str(trees / "cpu_results"))
    assert "cpu_results tree" in err and "--gpu" in err


def test_a_failure_while_drawing_leaves_nothing(trees, monkeypatch):
    import common.plots.comparison as pc

    def boom(records, root):
        raise RuntimeError("drawing failed")

    monkeypatch.setattr(pc, "plot_all", boom)
    with pytest.raises(RuntimeError):
        run(["--results-dir", str(trees)])
    assert not (trees / COMPARISON_DIR).exists()
    assert not list(trees.glob(f".{COMPARISON_DIR}*"))


# --- GPU analysis skipped (CPU-only machine) -----------------------------------------------------------------


def test_skipped_gpu_tree_exits_0_with_one_line_and_writes_nothing(tmp_path, capsys):
    from common.records import Record, save_record

    results = tmp_path / "results"
    shutil.copytree(FIXTURES / "cpu_results", results / "cpu_results")
    reason = "torch.cuda.is_available() is False (no NVIDIA GPU, driver or CUDA build of torch)"
    save_record(results / "gpu_results" / "metrics" / "gpu_status.json",
                Record(kind="gpu_status", device="cuda", data={"cuda_available": False}, status="skipped",
                       reason=reason))
    before = sorted(p.relative_to(results) for p in results.rglob("*"))
    assert run(["--results-dir", str(results)]) == 0
    out = capsys.readouterr()
    assert out.out == f"GPU analysis was skipped: {reason}; nothing to compare\n"
    assert out.err == ""
    assert sorted(p.relative_to(results) for p in results.rglob("*")) == before


# --- replot and help -----------------------------------------------------------------------------------------


def test_replot_redraws_figures_and_report_from_metrics_alone(compared, tmp_path):
    # a copy of the comparison only: no input trees beside it
    results = tmp_path / "elsewhere"
    shutil.copytree(compared / COMPARISON_DIR, results / COMPARISON_DIR)
    out = results / COMPARISON_DIR
    before = (out / "metrics" / "gpu_cpu_performance_stats.json").read_text()
    for rel in list(FIGURES) + [REPORT, "performance_comparison/gpu_cpu_performance_stats.json"]:
        (out / rel).unlink()
    assert run(["--results-dir", str(results), "--replot"]) == 0
    for rel in list(FIGURES) + [REPORT, "performance_comparison/gpu_cpu_performance_stats.json"]:
        assert (out / rel).is_file(), rel
    assert (out / "metrics" / "gpu_cpu_performance_stats.json").read_text() == before


def test_replot_without_records_is_a_clear_error(tmp_path, capsys):
    assert run(["--results-dir", str(tmp_path), "--replot"]) != 0
    assert "no comparison records to replot" in capsys.readouterr().err


def test_help_explains(capsys):
    with pytest.raises(SystemExit) as exc:
        run(["--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for word in ("--gpu", "--cpu", "--replot", "--results-dir", "--gpu-price-per-hour", "--cpu-price-per-hour",
                 "skipped", "like-for-like", "best-vs-best", "comparison_results"):
        assert word in text, word


def test_the_comparison_records_have_the_fields_they_had_before_the_refactor(compared):
    """The same comparison record files with the same top-level and data fields as before the
    structure refactor (tests/fixtures/record_fields.json, made by tests/fixtures/record_fields.py)."""
    spec = importlib.util.spec_from_file_location("record_fields", REPO / "tests" / "fixtures" / "record_fields.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    expected = {k: v for k, v in json.loads((REPO / "tests" / "fixtures" / "record_fields.json").read_text()).items()
                if k.startswith("comparison_results/")}
    got = {k: v for k, v in mod.record_fields(compared).items() if k.startswith("comparison_results/")}
    assert sorted(got) == sorted(expected), "the same record files"
    for name, fields in expected.items():
        assert got[name] == fields, name
