"""The registry (common.layout.SECTIONS) is one line per section naming only its package, and every
registered package has the parts the convention of common.sections asks for; a package that lacks
one is named with what it lacks."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from common import layout
from common.sections import PARTS, problems

REPO = Path(__file__).resolve().parents[2]
SECTIONS_DIR = REPO / "common" / "sections"


def _registry_calls() -> list[ast.Call]:
    tree = ast.parse((REPO / "common" / "layout.py").read_text())
    node = next(n for n in tree.body if isinstance(n, ast.AnnAssign | ast.Assign)
                and "SECTIONS" in [t.id for t in (n.targets if isinstance(n, ast.Assign) else [n.target])])
    assert isinstance(node.value, ast.Tuple), "SECTIONS must be a tuple literal"
    return node.value.elts


def registry_problems(sections) -> list[str]:
    """Every registered section's missing parts, one line each."""
    return [line for sec in sections for line in problems(sec.package)]


def test_the_registry_is_one_line_per_section_naming_only_its_package():
    calls = _registry_calls()
    lines = [c.lineno for c in calls]
    for c in calls:
        where = f"common/layout.py:{c.lineno}"
        assert isinstance(c, ast.Call) and getattr(c.func, "id", None) == "Section", f"{where}: not a Section(...)"
        assert c.lineno == c.end_lineno, f"{where}: a section's entry spans lines {c.lineno}-{c.end_lineno}"
        assert len(c.args) == 1 and isinstance(c.args[0], ast.Constant), f"{where}: Section(name, folder=...) only"
        assert {k.arg for k in c.keywords} <= {"folder"}, f"{where}: the parts are found by convention, not named"
    assert len(set(lines)) == len(lines), "two sections on one line"
    assert [c.args[0].value for c in calls] == list(layout.SECTION_NAMES)


def test_every_section_package_is_registered_and_every_registered_one_exists():
    packages = sorted(p.parent.name for p in SECTIONS_DIR.glob("*/__init__.py"))
    assert packages == sorted(layout.SECTION_NAMES)
    assert all(s.package == f"common.sections.{s.name}" for s in layout.SECTIONS)


def test_every_registered_package_provides_its_entry_points():
    assert registry_problems(layout.SECTIONS) == [], "\n".join(registry_problems(layout.SECTIONS))


def test_the_required_parts_are_measure_and_plot():
    assert [p for p, (_, required) in PARTS.items() if required] == ["measure", "plot"]


@pytest.fixture
def broken(tmp_path, monkeypatch):
    """A section package with a measure part, no plot.py, and a compare.py without speedups()."""
    pkg = tmp_path / "broken_section"
    pkg.mkdir()
    (pkg / "__init__.py").write_text('"""a section that misses parts"""\n')
    (pkg / "measure.py").write_text("def measure(ctx):\n    return {}\n")
    (pkg / "compare.py").write_text("def speedup(g, c, out, skipped):  # misspelt\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield layout.Section("broken_section", package="broken_section")
    for name in [m for m in sys.modules if m.split(".")[0] == "broken_section"]:
        del sys.modules[name]


def test_a_package_missing_a_part_fails_with_what_it_lacks(broken):
    found = registry_problems([*layout.SECTIONS, broken])
    assert found == ["broken_section: no plot.py (it must define plot())",
                     "broken_section.compare defines no speedups() (the convention in common/sections/__init__.py)"]
    with pytest.raises(AttributeError, match=r"broken_section\.compare defines no speedups\(\)"):
        broken.entry("compare")
    assert broken.entry("key_numbers") is None  # an optional part that is absent
    assert broken.entry("measure")(None) == {} and broken.summary == "a section that misses parts"


def test_a_package_without_its_summary_or_that_cannot_be_imported_is_named(broken, tmp_path):
    (tmp_path / "broken_section" / "__init__.py").write_text("")
    (tmp_path / "broken_section" / "plot.py").write_text("def plot(record, arrays, out_dir, name):\n    return []\n")
    (tmp_path / "broken_section" / "compare.py").unlink()
    assert problems("broken_section") == ["broken_section: no docstring in __init__.py (its one-line summary)"]
    assert problems("no_such_section") == ["no_such_section: cannot be imported (No module named 'no_such_section')"]
