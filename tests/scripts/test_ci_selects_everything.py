"""`make test` (what CI runs) deselects nothing silently: no marker filter, keyword filter or
deselection in pytest's options or in the Makefile's test command; ``slow`` tests run in CI and
``gpu`` tests are skipped (reported by -ra) only where CUDA is absent."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FILTERS = re.compile(r"(^|\s)(-m|-k|--deselect|--ignore|--ignore-glob)(\s|=|$)")


def test_pytest_options_filter_nothing():
    text = (REPO / "pyproject.toml").read_text()
    section = text.split("[tool.pytest.ini_options]", 1)[1].split("\n[", 1)[0]
    addopts = re.search(r'^addopts\s*=\s*"([^"]*)"', section, re.M).group(1)
    assert not FILTERS.search(addopts), addopts
    assert re.search(r'^testpaths\s*=\s*\["tests"\]', section, re.M)
    assert "-ra" in addopts, "skips must be reported"


def test_make_test_runs_the_whole_suite():
    make = (REPO / "Makefile").read_text()
    recipe = make.split("\ntest:", 1)[1].split("\n\n", 1)[0]
    cmd = [line.strip() for line in recipe.splitlines()[1:] if line.startswith("\t")]
    assert cmd == ["$(PY) -m pytest -q"], cmd
    assert (REPO / ".ci" / "run").read_text().strip().endswith("make test")
