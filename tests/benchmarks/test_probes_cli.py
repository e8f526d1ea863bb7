"""benchmarks/ttt_probe.py and benchmarks/schedule_probe.py refuse bad input with one line and
a non-zero exit, before any training."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("argv,says", [
    (["--rungs", "nope"], "unknown rung id(s) nope; known: recipe"),
    (["--rungs", "gemm_1x1", "--set", "foo"], "give NAME=VALUE"),
])
def test_ttt_probe_refuses_bad_input(argv, says, capsys):
    from benchmarks.ttt_probe import main

    assert main(argv) != 0
    err = capsys.readouterr().err.strip()
    assert says in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("argv,says", [
    (["--schedules", "1,x"], "--schedules '1,x': give comma-separated numbers"),
    (["--lr-mults", "0"], "give positive numbers"),
    (["--from-records", "/nonexistent.json"], "cannot read a schedule_probe record"),
])
def test_schedule_probe_refuses_bad_input(argv, says, capsys):
    from benchmarks.schedule_probe import main

    assert main(argv) != 0
    err = capsys.readouterr().err.strip()
    assert says in err and len(err.splitlines()) == 1
