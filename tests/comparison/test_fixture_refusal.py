"""The comparison's test fixtures say they are synthetic, and the loader refuses them outside tests."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from common.errors import UserError
from common.fixture_guard import ALLOW_ENV

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "comparison"


def _fake_gpu():
    sys.path.insert(0, str(FIXTURES))
    try:
        import fake_gpu
    finally:
        sys.path.remove(str(FIXTURES))
    return fake_gpu


def test_every_fixture_record_is_marked(tmp_path):
    files = sorted((FIXTURES / "cpu_results" / "metrics").glob("*.json"))
    assert files
    assert all(json.loads(f.read_text())["environment"]["synthetic_fixture"] is True for f in files)
    gpu = _fake_gpu().make_gpu_tree(FIXTURES / "cpu_results", tmp_path / "gpu_results")
    made = sorted((gpu / "metrics").glob("*.json"))
    assert len(made) == len(files)
    assert all(json.loads(f.read_text())["environment"]["synthetic_fixture"] is True for f in made)


def test_loader_refuses_fixtures_unless_allowed(monkeypatch):
    from common.comparison.load import load_run

    monkeypatch.delenv(ALLOW_ENV, raising=False)
    with pytest.raises(UserError) as err:
        load_run(FIXTURES / "cpu_results", "cpu")
    msg = str(err.value)
    assert "synthetic test fixture" in msg and "cpu_results" in msg and "\n" not in msg
    monkeypatch.setenv(ALLOW_ENV, "1")
    assert load_run(FIXTURES / "cpu_results", "cpu").records


def test_a_real_record_is_not_refused(monkeypatch, tmp_path):
    from common.fixture_guard import refuse_fixture
    from common.records import Record

    monkeypatch.delenv(ALLOW_ENV, raising=False)
    refuse_fixture(Record("run_summary", "cpu", {}, {"hostname": "x"}), tmp_path / "r.json")  # no error
    with pytest.raises(UserError):
        refuse_fixture(Record("run_summary", "cpu", {}, {"synthetic_fixture": True}), tmp_path / "r.json")
