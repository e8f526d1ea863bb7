"""Fault injection, interruption and concurrency of the analysis engine: SIGTERM and SIGINT at
several points of a run (subprocess + os.kill), --resume, a second writer of one results tree,
a stale lock, --replot of an interrupted tree and of a record missing a field, and the mode of
files written under a umask. The engine runs three fast stand-in sections so that every case
takes seconds; finished records must stay byte for byte what they were."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NAMES = ("fake_a", "fake_b", "fake_c")

DRIVER = """
import os, sys, time, types
sys.path.insert(0, {repo!r})
from common.analysis import engine

def make(name):  # a section package 'name' whose measure and plot parts are one module
    sys.modules[name] = types.ModuleType(name)
    sys.modules[name].__path__ = []  # a package without files: no compare or key_numbers part
    m = types.ModuleType(name + ".part")
    def measure(ctx):
        if os.environ.get("FAULT_HANG") == name:
            print("HANG " + name, flush=True)
            time.sleep(120)
        return {{"value": len(name)}}
    m.measure = measure
    m.plot = lambda rec, arrays, out, fname: []
    sys.modules[name + ".measure"] = sys.modules[name + ".plot"] = m

for n in {names!r}:
    make(n)
from common import layout
engine.SECTIONS = layout.SECTIONS = tuple(layout.Section(n, package=n) for n in {names!r})
engine.SECTION_NAMES = layout.SECTION_NAMES = tuple({names!r})
sys.exit(engine.main_for("cpu")(sys.argv[1:]))
"""


@pytest.fixture
def driver(tmp_path) -> Path:
    path = tmp_path / "driver.py"
    path.write_text(DRIVER.format(repo=str(REPO), names=NAMES))
    return path


def _args(data_dir: Path, results: Path, *more: str) -> list[str]:
    return ["--quick", "--no-progress", "--data-dir", str(data_dir), "--results-dir", str(results),
            "--sample-hz", "2", *more]


def _start(driver: Path, argv: list[str], hang: str | None) -> subprocess.Popen:
    env = {**os.environ, "FAULT_HANG": hang or ""}
    return subprocess.Popen([sys.executable, str(driver), *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, cwd=REPO)


def _wait_for(proc: subprocess.Popen, marker: str) -> list[str]:
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if line.startswith(marker):
            return lines
    raise AssertionError(f"{marker!r} never printed: {''.join(lines)} {proc.stderr.read()}")


def _metrics(results: Path) -> Path:
    return results / "cpu_results" / "metrics"


def _files(results: Path) -> dict[str, bytes]:
    tree = results / "cpu_results"
    return {str(p.relative_to(tree)): p.read_bytes() for p in sorted(tree.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("sig, code, hang", [(signal.SIGTERM, 143, "fake_b"), (signal.SIGINT, 130, "fake_c")])
def test_signal_mid_run_keeps_finished_records_reports_and_resumes(sig, code, hang, driver, synthetic_data_dir,
                                                                  tmp_path):
    results = tmp_path / "res"
    proc = _start(driver, _args(synthetic_data_dir, results), hang)
    _wait_for(proc, f"HANG {hang}")
    finished = [n for n in NAMES[: NAMES.index(hang)]]
    kept = {n: (_metrics(results) / f"cpu_{n}.json").read_bytes() for n in finished}
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code and f"interrupted ({sig.name})" in err and "Traceback" not in err
    tree = results / "cpu_results"
    assert not (tree / ".lock").exists() and not [p for p in tree.rglob(".*") if p.is_file()]  # no temp files
    for n in finished:
        assert (_metrics(results) / f"cpu_{n}.json").read_bytes() == kept[n]
    summary = json.loads((_metrics(results) / "cpu_run_summary.json").read_text())
    intr = summary["data"]["interrupted"]
    assert intr["signal"] == sig.name and intr["during"] == hang and intr["finished"] == finished
    report = (tree / "reports" / "cpu_report.md").read_text()
    assert f"interrupted ({sig.name})" in report and f"Not run: {', '.join(NAMES[len(finished):])}" in report
    # --resume keeps the finished sections byte for byte and measures the rest
    done = subprocess.run([sys.executable, str(driver), *_args(synthetic_data_dir, results, "--resume")],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.returncode == 0, done.stderr
    for n in finished:
        assert f"[{n}] kept from the interrupted run" in done.stdout
        assert (_metrics(results) / f"cpu_{n}.json").read_bytes() == kept[n]
    for n in NAMES[len(finished):]:
        assert json.loads((_metrics(results) / f"cpu_{n}.json").read_text())["status"] == "ok"
    summary = json.loads((_metrics(results) / "cpu_run_summary.json").read_text())
    assert "interrupted" not in summary["data"] and set(summary["data"]["sections"]) == set(NAMES)


def test_resume_measures_again_what_other_settings_made(driver, synthetic_data_dir, tmp_path):
    results = tmp_path / "res"
    first = subprocess.run([sys.executable, str(driver), *_args(synthetic_data_dir, results)],
                           capture_output=True, text=True, cwd=REPO, timeout=120)
    assert first.returncode == 0, first.stderr
    again = subprocess.run([sys.executable, str(driver), *_args(synthetic_data_dir, results, "--resume", "--seed",
                                                                   "3")], capture_output=True, text=True, cwd=REPO,
                           timeout=120)
    assert again.returncode == 0 and "measured again: its record was measured with other settings (seed" in again.stdout


def test_second_writer_is_refused_and_stale_lock_taken_over(driver, synthetic_data_dir, tmp_path):
    results = tmp_path / "res"
    proc = _start(driver, _args(synthetic_data_dir, results), "fake_b")
    try:
        _wait_for(proc, "HANG fake_b")
        before = _files(results)
        second = subprocess.run([sys.executable, str(driver), *_args(synthetic_data_dir, results)],
                                capture_output=True, text=True, cwd=REPO, timeout=120)
        assert second.returncode == 4 and f"pid {proc.pid}" in second.stderr and "is in use" in second.stderr
        assert second.stderr.count("\n") == 1
        assert _files(results) == before
    finally:
        proc.kill()  # SIGKILL leaves its lock behind
        proc.wait()
    assert (results / "cpu_results" / ".lock").exists()
    third = subprocess.run([sys.executable, str(driver), *_args(synthetic_data_dir, results, "--replot")],
                           capture_output=True, text=True, cwd=REPO, timeout=120)
    assert third.returncode == 0 and "took over the lock" in third.stderr and f"pid {proc.pid}" in third.stderr
    assert not (results / "cpu_results" / ".lock").exists()


def test_replot_of_a_record_missing_a_field_is_one_line(tmp_path, capsys):
    from common.analysis.engine import main_for
    from common.records import Record, save_record

    metrics = tmp_path / "res" / "cpu_results" / "metrics"
    path = save_record(metrics / "cpu_performance_analysis.json",
                       Record(kind="performance_analysis", device="cpu", data={"batch_sweep": []}))
    before = path.read_bytes()
    rc = main_for("cpu")(["--replot", "--results-dir", str(tmp_path / "res"), "--sections", "performance_analysis"])
    err = capsys.readouterr().err
    assert rc == 2 and str(path) in err and "field" in err and "missing" in err and "Traceback" not in err
    assert err.count("\n") == 1 and path.read_bytes() == before


def test_replot_of_an_interrupted_tree_without_summary(tmp_path, capsys):
    from common.analysis.engine import main_for
    from common.records import Record, save_record

    metrics = tmp_path / "res" / "cpu_results" / "metrics"
    save_record(metrics / "cpu_utilization_patterns.json",
                Record(kind="utilization_patterns", device="cpu", data={}, status="error", reason="boom"))
    rc = main_for("cpu")(["--replot", "--results-dir", str(tmp_path / "res")])
    assert rc == 0
    report = (tmp_path / "res" / "cpu_results" / "reports" / "cpu_report.md").read_text()
    assert "No run summary" in report and "--resume" in report


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_files_are_written_with_the_users_umask(umask, mode, tmp_path):
    from common.atomic import write_json

    old = os.umask(umask)
    try:
        path = write_json(tmp_path / "r.json", {"a": 1})
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == mode
