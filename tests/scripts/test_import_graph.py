"""The project's modules import one another without a cycle (lazy imports inside functions
count too: a cycle there is the same knot, only untied at run time)."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("common", "benchmarks")


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in (REPO / pkg).rglob("*.py"):
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    for path in REPO.glob("*.py"):
        out[path.stem] = path
    return out


def _target(name: str, modules: dict[str, Path]) -> str | None:
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for mod, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [f"{node.module}.{a.name}" for a in node.names]
            for name in names:
                t = _target(name, modules)
                if t and t != mod:
                    graph[mod].add(t)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph.get(m, ())):
            if state.get(n) == 1:
                return stack[stack.index(n):] + [n]
            if n not in state and (c := visit(n)):
                return c
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (c := visit(m)):
            return c
    return None


def test_no_import_cycle_among_project_modules():
    graph = import_graph()
    assert len(graph) > 40 and graph["common.analysis.engine"], "the graph must see the project's modules"
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_only_the_settings_module_and_the_scripts_import_config():
    graph = import_graph()
    readers = sorted(m for m, deps in graph.items() if "config" in deps)
    allowed = {"common.analysis.settings", "common.cli", "download_mednist", "benchmarks.step_breakdown",
               "benchmarks.winning_solution", "benchmarks.inference_ladder", "benchmarks.scaling",
               "benchmarks.schedule_probe", "common.api"}
    # the benchmarks' argparse defaults; the Python API's defaults, as the scripts
    assert set(readers) <= allowed, f"config read outside the settings: {sorted(set(readers) - allowed)}"


def _section_of(module: str) -> str | None:
    """'common.sections.<name>' for a module of a section package, else None (common.sections
    itself is the shared convention)."""
    parts = module.split(".")
    return ".".join(parts[:3]) if parts[:2] == ["common", "sections"] and len(parts) > 2 else None


def test_sections_import_no_other_section_and_shared_code_imports_no_section():
    """Adding a section touches only its package and its line in the registry: a section's modules
    import shared code only, and the shared library (common/) reaches sections only through the
    registry, by name. The benchmarks and the scripts may import a section's functions."""
    graph = import_graph()
    sections = {s for m in graph if (s := _section_of(m))}
    assert {s.rpartition(".")[2] for s in sections} >= {"winning_solution", "scaling", "utilization_patterns"}
    crossing = sorted(f"{m} -> {t}" for m, deps in graph.items() for t in deps
                      if _section_of(t) and m.startswith("common.") and _section_of(m) != _section_of(t))
    assert crossing == [], "imports across a section's package: " + "; ".join(crossing)
