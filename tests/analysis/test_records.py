import json

import pytest

from common.errors import UserError
from common.records import Record, load_record, save_record


def test_roundtrip_and_nan_becomes_null(tmp_path):
    p = tmp_path / "r.json"
    save_record(p, Record(kind="k", device="cpu", data={"x": float("nan"), "y": [1.0, float("inf")]}))
    text = p.read_text()
    assert "NaN" not in text and "Infinity" not in text
    r = load_record(p, kind="k")
    assert r.data == {"x": None, "y": [1.0, None]}
    assert not list(tmp_path.glob(".*"))  # no temporary file left behind


def test_corrupt_record_is_refused_with_its_name(tmp_path):
    p = tmp_path / "broken.json"
    save_record(p, Record(kind="k", device="cpu", data={"a": 1}))
    p.write_text(p.read_text()[:20])
    with pytest.raises(UserError, match="broken.json"):
        load_record(p)


def test_missing_field_and_wrong_kind_named(tmp_path):
    p = tmp_path / "r.json"
    p.write_text(json.dumps({"schema_version": 1, "kind": "k", "device": "cpu", "created": "x", "status": "ok"}))
    with pytest.raises(UserError, match="'data' missing"):
        load_record(p)
    save_record(p, Record(kind="k", device="cpu", data={}))
    with pytest.raises(UserError, match="expected 'other'"):
        load_record(p, kind="other")
    with pytest.raises(UserError, match="not found"):
        load_record(tmp_path / "absent.json")


def test_commit_of_a_copy_without_git_comes_from_suite_commit(monkeypatch, tmp_path):
    from common.measure import environment

    monkeypatch.setattr(environment, "ROOT", tmp_path)  # a copy without .git
    monkeypatch.delenv("SUITE_COMMIT", raising=False)
    assert environment.git_commit()["commit"] is None and environment.git_commit()["reason"]
    monkeypatch.setenv("SUITE_COMMIT", "abc1234")
    got = environment.git_commit()
    assert got["commit"] == "abc1234" and "SUITE_COMMIT" in got["source"]


def test_suite_commit_wins_over_a_stale_git_in_the_copy(monkeypatch):
    """A lent machine's copy may carry a .git that is not the code copied: the commit the
    caller names is the one recorded."""
    from common.measure import environment

    monkeypatch.delenv("SUITE_COMMIT", raising=False)
    own = environment.git_commit()["commit"]
    monkeypatch.setenv("SUITE_COMMIT", "abc1234")
    got = environment.git_commit()
    assert got["commit"] == "abc1234" != own and got["source"] == "SUITE_COMMIT"
