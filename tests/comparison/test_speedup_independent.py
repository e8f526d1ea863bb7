"""Headline speedups re-computed here with numpy from raw values the test reads itself (not
through the product's ratio() or its declared paths): the point is the ratio of medians, the
interval the window range (extreme pairwise ratios)."""

from __future__ import annotations

import itertools
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "comparison"


@pytest.fixture(scope="module")
def trees(tmp_path_factory):
    root = tmp_path_factory.mktemp("trees")
    shutil.copytree(FIXTURES / "cpu_results", root / "cpu_results")
    sys.path.insert(0, str(FIXTURES))
    try:
        import fake_gpu
    finally:
        sys.path.remove(str(FIXTURES))
    fake_gpu.make_gpu_tree(root / "cpu_results", root / "gpu_results")
    return root


def _raw(root: Path, device: str, kind: str) -> dict:
    prefix = "gpu" if device == "cuda" else "cpu"
    return json.loads((root / f"{prefix}_results" / "metrics" / f"{prefix}_{kind}.json").read_text())["data"]


CASES = {  # entry id -> how to read the raw values of one side (images/s, higher is better)
    "training.ladder.recipe.end_to_end":
        ("winning_solution_analysis", lambda d: d["rungs"][0]["end_to_end"]["images_per_s"]),
    "pipeline.device_resident.end_to_end":
        ("pipeline_deep_dive", lambda d: d["configs"]["device_resident"]["end_to_end_images_per_s"]["values"]),
}


@pytest.mark.parametrize("eid", list(CASES))
def test_speedup_and_window_range_match_numpy(trees, eid):
    from common.comparison.compute import all_speedups
    from common.comparison.load import load_inputs

    entries, _ = all_speedups(load_inputs(trees / "gpu_results", trees / "cpu_results"))
    e = {x["id"]: x for x in entries}[eid]
    kind, get = CASES[eid]
    g = np.asarray(get(_raw(trees, "cuda", kind)), dtype=float)
    c = np.asarray(get(_raw(trees, "cpu", kind)), dtype=float)
    assert e["speedup"] == pytest.approx(np.median(g) / np.median(c), rel=1e-12)
    pairs = [a / b for a, b in itertools.product(g, c)]
    assert e["ci95"] == pytest.approx([min(pairs), max(pairs)], rel=1e-12)
