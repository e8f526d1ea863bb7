"""The analysis engine end to end on tiny synthetic data (CPU): one quick run, then the
results tree, its records, the report and --replot are checked; and the GPU script on a
machine without CUDA."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import os
import re
import shutil
import time
from pathlib import Path

import pytest
import torch

import comprehensive_cpu_analysis
import comprehensive_gpu_analysis
from common.analysis.settings import Settings
from common.records import load_record

FOLDERS = ["visualizations", "utilization_patterns", "augmentation_analysis", "pipeline_deep_dive",
           "performance_analysis", "reports", "metrics"]
SETTINGS_FIELDS = {f.name for f in dataclasses.fields(Settings)}
SECTIONS = ["visualizations", "augmentation_analysis", "pipeline_deep_dive", "performance_analysis",
            "winning_solution", "scaling", "utilization_patterns"]
# Sizes a 2-core machine gets through in about a minute. NUM_WORKERS=0: DataLoader worker start-up
# (a fresh worker per epoch of 6 steps) costs more than the rest of the run together on 2 cores;
# the worker path itself is tested in test_workloads_training.py.
QUICK = ["--quick", "--no-progress",
         "--set", "QUICK_CPU_BATCH_SIZES=4,8", "--set", "QUICK_CPU_BATCH_SIZE=8",
         "--set", "QUICK_VOLUME_SPACING_MM=6.0", "--set", "QUICK_VOLUME_TRAIN_STEPS=3", "--set", "QUICK_PATCH_SIZE=16",
         "--set", "QUICK_INFERENCE_REPEATS=5", "--set", "QUICK_CPU_MAX_TRAIN_IMAGES=48", "--set", "UNET_CHANNELS=8,16",
         "--set", "NUM_WORKERS=0", "--set", "QUICK_AUGMENTATION_IMAGES=12",
         "--set", "QUICK_AUGMENTATION_QUALITY_IMAGES=8",
         "--set", "QUICK_RENDER_SIZE=48", "--set", "QUICK_VOLUME_AUGMENTATION_PATCHES=2",
         "--set", "INFERENCE_TRAIN_STEPS=1", "--set", "QUICK_INFERENCE_LATENCY_CALLS=5",
         "--set", "QUICK_CPU_INFERENCE_BATCH_SIZES=1,2", "--set", "INFERENCE_CURVE_SECONDS=0.01",
         "--set", "INFERENCE_COMPILE=False",
         "--set", "SCALING_CPU_PROCS=1"]  # one gloo launch (2 are in test_distributed_scaling)


def _no_constant(name: str):
    raise ValueError(f"{name} in a JSON file")


def _parse_strict(path: Path):
    return json.loads(path.read_text(encoding="utf-8"), parse_constant=_no_constant)


@pytest.fixture(scope="module")
def run(synthetic_data_dir, tmp_path_factory):
    """One quick CPU analysis: (results dir, cpu_results root, return code, stdout, seconds)."""
    results = tmp_path_factory.mktemp("engine") / "results"
    threads = torch.get_num_threads()
    out = io.StringIO()
    t0 = time.perf_counter()
    try:
        with contextlib.redirect_stdout(out):
            rc = comprehensive_cpu_analysis.main(
                [*QUICK, "--data-dir", str(synthetic_data_dir), "--results-dir", str(results),
                 "--set", f"CACHE_DIR={results.parent / 'cache'}"])
    finally:
        torch.set_num_threads(threads)
    return results, results / "cpu_results", rc, out.getvalue(), time.perf_counter() - t0


@pytest.fixture(scope="module")
def root(run) -> Path:
    _, root, rc, out, _ = run
    assert rc == 0, out[-3000:]
    return root


def _records(root: Path) -> list[Path]:
    """Every JSON of the tree that is a record (the report index is the report's table of contents)."""
    return sorted(p for p in root.rglob("*.json") if not p.name.endswith(("report_index.json", "trace.json")))


def test_run_succeeds_with_every_section_ok(run, root):
    _, _, rc, out, secs = run
    assert rc == 0
    for kind in SECTIONS[:-1]:
        assert f"[{kind}] ok" in out, out
    summary = load_record(root / "metrics" / "cpu_run_summary.json", kind="run_summary")
    assert {k: v["status"] for k, v in summary.data["sections"].items()} == dict.fromkeys(SECTIONS, "ok")
    assert not list(root.rglob("*error.txt"))
    assert secs > 0  # about a minute on 2 idle cores (see --durations); not asserted: shared machines vary


def test_every_folder_holds_a_figure_and_a_record(root):
    for folder in FOLDERS:
        d = root / folder
        assert d.is_dir(), folder
        assert list(d.glob("*.png")), f"{folder}/ has no PNG"
        assert list(d.glob("*.json")), f"{folder}/ has no JSON"
        assert all(p.name.startswith("cpu_") for p in d.iterdir() if p.is_file()), sorted(os.listdir(d))
    assert (root / "cpu_winning_solution_analysis.png").is_file()
    assert (root / "cpu_winning_solution_analysis.json").is_file()


def test_no_json_holds_nan_or_infinity(root):
    files = list(root.rglob("*.json"))
    assert len(files) >= 14
    for path in files:
        _parse_strict(path)  # raises on NaN, Infinity, -Infinity


def test_every_record_loads_and_carries_the_environment(root):
    paths = _records(root)
    kinds = set()
    for path in paths:
        rec = load_record(path)
        kinds.add(rec.kind)
        assert rec.device == "cpu" and rec.status == "ok", (path, rec.status, rec.reason)
        env = rec.environment
        assert env["torch"] == torch.__version__, path
        assert env["cpu_model"], path
        assert "commit" in env["git"], path
        assert env["git"]["commit"] or env["git"].get("reason")
        assert env["dataset"]["synthetic"] is True, path
        assert env["seed"] == 0 and env["config"]["seed"] == 0, path
        assert env["config"]["quick"] is True and env["config"]["batch_size"] == 8
        assert set(env["config"]) == SETTINGS_FIELDS, "the settings are stored whole in every record"
        assert env["threads_used"] >= 1 and env["monai"]
    assert kinds == {*SECTIONS, "run_summary"}
    # the canonical record (metrics/) and its copy beside the figures are the same record
    for kind in SECTIONS:
        if kind == "winning_solution":
            name = "cpu_winning_solution_analysis.json"
            canon, copy = root / "metrics" / name, root / name
        elif kind == "scaling":  # its figure and record copy live in performance_analysis/
            canon, copy = root / "metrics" / "cpu_scaling.json", root / "performance_analysis" / "cpu_scaling.json"
        else:
            canon, copy = root / "metrics" / f"cpu_{kind}.json", root / kind / f"cpu_{kind}.json"
        assert _parse_strict(canon) == _parse_strict(copy), kind


def _report(root: Path) -> str:
    return (root / "reports" / "cpu_report.md").read_text(encoding="utf-8")


def _link_targets(text: str) -> list[str]:
    return re.findall(r"\]\(([^)\s]+)\)", text)


def test_report_links_every_section_figure_and_every_link_resolves(root):
    text = _report(root)
    reports = root / "reports"
    for png in root.rglob("*.png"):
        if png.parent == reports:
            continue  # see test_report_links_its_own_key_numbers_figure
        rel = os.path.relpath(png, reports)
        assert f"]({rel})" in text, f"{rel} is not linked in the report"
    links = _link_targets(text)
    assert len(links) >= 20
    for link in links:
        target = (reports / link).resolve()
        assert target.is_file() or (link.rstrip("/").endswith("csv") and target.is_dir()), f"broken link {link}"


def test_report_links_its_own_key_numbers_figure(root):
    assert (root / "reports" / "cpu_key_numbers.png").is_file()
    assert "(cpu_key_numbers.png)" in _report(root)


def test_report_labels_synthetic_data_and_shows_the_environment(root):
    text = _report(root)
    assert "SYNTHETIC" in text
    assert torch.__version__ in text and "Quick mode" in text
    index = _parse_strict(root / "reports" / "cpu_report_index.json")
    assert index["report"] == "cpu_report.md" and index["figures"]
    for f in index["figures"]:
        assert (root / f).is_file(), f


def _pngs(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*.png")}


def _hashes(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*.json"))}


def test_replot_redraws_every_figure_without_measuring(run, root, tmp_path, monkeypatch, capsys):
    results = tmp_path / "results"
    shutil.copytree(run[0], results)
    copy = results / "cpu_results"
    figures = _pngs(copy)
    assert len(figures) >= 18
    metrics_before = _hashes(copy / "metrics")
    for png in copy.rglob("*.png"):
        png.unlink()
    assert not _pngs(copy)

    from common.analysis import engine

    def no_measuring(*_a, **_k):
        raise AssertionError("--replot must not measure")

    monkeypatch.setattr(engine, "_measure", no_measuring)
    t0 = time.perf_counter()
    rc = comprehensive_cpu_analysis.main(["--replot", "--no-progress", "--results-dir", str(results)])
    secs = time.perf_counter() - t0
    out = capsys.readouterr().out
    assert rc == 0, out
    assert secs < 30, f"--replot took {secs:.1f} s"
    assert "measuring" not in out
    assert _pngs(copy) == figures, figures ^ _pngs(copy)
    assert _hashes(copy / "metrics") == metrics_before, "--replot changed records in metrics/"
    assert (copy / "reports" / "cpu_report.md").is_file()


def test_replot_without_records_is_a_clear_error(tmp_path, capsys):
    rc = comprehensive_cpu_analysis.main(["--replot", "--results-dir", str(tmp_path / "empty")])
    err = capsys.readouterr().err
    assert rc != 0 and err.startswith("error:") and "metrics" in err


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the behaviour on a machine without CUDA")
def test_gpu_script_without_cuda_says_so_and_exits_0(synthetic_data_dir, tmp_path, capsys):
    results = tmp_path / "results2"
    threads = torch.get_num_threads()
    try:
        rc = comprehensive_gpu_analysis.main(["--quick", "--no-progress", "--data-dir", str(synthetic_data_dir),
                                              "--results-dir", str(results)])
    finally:
        torch.set_num_threads(threads)
    captured = capsys.readouterr()
    assert rc == 0
    lines = [line for line in captured.out.splitlines() if line.strip()]
    assert len(lines) == 1 and "GPU" in lines[0] and "CUDA" in lines[0], lines
    assert not captured.err.strip()
    status = results / "gpu_results" / "metrics" / "gpu_status.json"
    rec = load_record(status, kind="gpu_status")
    assert rec.status == "skipped" and rec.reason and rec.device == "cuda"
    _parse_strict(status)
    assert [p for p in results.rglob("*") if p.is_file()] == [status]  # nothing else written


def test_the_records_have_the_fields_they_had_before_the_refactor(run):
    """The same top-level and data fields in every record of metrics/ as before the structure
    refactor (tests/fixtures/record_fields.json: the records of a real quick CPU run made before it,
    checked against a quick CPU run of the code before it; regenerate with tests/fixtures/record_fields.py
    when a field is added on purpose). The winning solution's fields are those of the time-to-target record
    (issue 15), taken from a quick CPU run of that section on 2026-11-30."""
    import importlib.util

    fixtures = Path(__file__).resolve().parents[1] / "fixtures"
    spec = importlib.util.spec_from_file_location("record_fields", fixtures / "record_fields.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    expected = {k: v for k, v in json.loads((fixtures / "record_fields.json").read_text()).items()
                if k.startswith("cpu_results/metrics/")}
    got = {k: v for k, v in mod.record_fields(run[0]).items() if k.startswith("cpu_results/metrics/")}
    assert len(expected) == 7
    new = {"cpu_results/metrics/cpu_scaling.json"}  # a section added after the refactor (issue 18)
    assert set(got) == set(expected) | new, "the same records"
    added = {"cpu_results/metrics/cpu_performance_analysis.json": {"inference_ladder"},  # issue 21's serving ladder
             "cpu_results/metrics/cpu_run_summary.json": {"converted_images", "ignored_entries"}}  # issue 17
    for name, fields in expected.items():
        want = {**fields, "data": sorted(set(fields["data"]) | added.get(name, set()))}
        assert got[name] == want, name


def test_run_writes_a_perfetto_trace_with_sections_stages_and_counters(root):
    from common.measure.trace import check_trace

    trace = _parse_strict(root / "metrics" / "cpu_trace.json")
    counts = check_trace(trace)
    assert counts["X"] > len(SECTIONS) and counts["C"] > 0
    sections = {e["name"] for e in trace["traceEvents"] if e.get("cat") == "section"}
    assert sections == set(SECTIONS) - {"utilization_patterns"}
    stages = {e["name"] for e in trace["traceEvents"] if e.get("cat") == "stage"}
    assert {"forward", "backward"} <= stages
    assert "cpu_trace.json" in (root / "reports" / "cpu_report.md").read_text(encoding="utf-8")


def test_run_writes_html_report_and_csv_exports(root):
    page = (root / "reports" / "cpu_report.html").read_text(encoding="utf-8")
    index = json.loads((root / "reports" / "cpu_report_index.json").read_text(encoding="utf-8"))
    assert page.count("data:image/png;base64,") >= len(index["figures"])
    csv = root / "csv"
    assert (csv / "cpu_samples_cpu.csv").read_text().startswith("t_s,t_perf_counter_s,")
    assert (csv / "cpu_report_key_numbers.csv").is_file() and (csv / "cpu_report_environment.csv").is_file()
    assert len(list(csv.glob("cpu_performance_analysis__*.csv"))) >= 2
