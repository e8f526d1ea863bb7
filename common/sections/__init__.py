"""The analysis sections, one package each: ``common/sections/<name>/``, named after the section's
record kind and registered with one line in ``common.layout.SECTIONS``. Adding a section touches
only its package and that line.

The engine, the report and the comparison find a section's parts by convention (``PARTS``):

================== ================ ============================================================ ========
module             defines          called as                                                    needed
================== ================ ============================================================ ========
``__init__.py``    its docstring    what the section does, in one line (``Section.summary``)      yes
``measure.py``     ``measure``      ``measure(ctx) -> data``: the record's data (the engine)      yes
``plot.py``        ``plot``         ``plot(record, arrays, out_dir, name) -> [paths]``: figures   yes
``compare.py``     ``speedups``     ``speedups(gpu_run, cpu_run, out, skipped)``: appends the     no
                                    section's speedup entries to ``out`` (the comparison)
``key_numbers.py`` ``key_numbers``  ``key_numbers(record) -> [(label, text)]``: the report's rows  no
================== ================ ============================================================ ========

Rules that keep the parts apart:

- ``__init__.py`` imports nothing: naming a section, or asking whether it has a part, loads no framework.
- ``compare.py`` and ``key_numbers.py`` read records only: no torch, and never the section's
  ``measure`` (the comparison runs where torch is not installed).
- Other modules of the section may sit beside these (``performance_analysis/plot_inference.py``).
- A section imports shared code (``common.workloads``, ``common.plots.common``, ``common.comparison``,
  ...), never another section; shared code never imports a section (the registry finds them by name).

This module is standard library only (``common.layout`` imports it).
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable

PACKAGE = "common.sections"
# module of a section package -> (the function it must define, whether every section needs the module)
PARTS: dict[str, tuple[str, bool]] = {
    "measure": ("measure", True),
    "plot": ("plot", True),
    "compare": ("speedups", False),
    "key_numbers": ("key_numbers", False),
}


def has_module(package: str, part: str) -> bool:
    """Whether ``package`` has the module ``part`` (imports the package's ``__init__`` only)."""
    return importlib.util.find_spec(f"{package}.{part}") is not None


def entry_point(package: str, part: str) -> Callable | None:
    """The function that ``part`` (a key of PARTS) names in ``package``; None where an optional
    module is absent. Imports the module now."""
    function, required = PARTS[part]
    if not required and not has_module(package, part):
        return None
    fn = getattr(importlib.import_module(f"{package}.{part}"), function, None)
    if not callable(fn):
        raise AttributeError(f"{package}.{part} defines no {function}() "
                             "(the convention in common/sections/__init__.py)")
    return fn


def problems(package: str) -> list[str]:
    """What ``package`` lacks of the convention, one line each; empty where it is complete.
    Imports its modules (torch too, through ``measure``)."""
    try:
        pkg = importlib.import_module(package)
    except ImportError as exc:
        return [f"{package}: cannot be imported ({exc})"]
    out = [] if (pkg.__doc__ or "").strip() else [f"{package}: no docstring in __init__.py (its one-line summary)"]
    for part, (function, required) in PARTS.items():
        if not has_module(package, part):
            if required:
                out.append(f"{package}: no {part}.py (it must define {function}())")
            continue
        try:
            entry_point(package, part)
        except (AttributeError, ImportError) as exc:
            out.append(str(exc) if isinstance(exc, AttributeError) else f"{package}.{part}: import failed ({exc})")
    return out
