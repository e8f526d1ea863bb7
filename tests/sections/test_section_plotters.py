"""Each section's plotter, alone, on a small real record (the comparison's CPU fixture, cut from a
quick CPU run): it writes its figures, and none of them is blank. The figures' arrays (the 3D
planes) are absent from the fixture, which the 3D plotter must state rather than fail on."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest

from common.layout import SECTIONS, file_name, record_file
from common.records import load_record

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "comparison" / "cpu_results"


def _not_blank(path: Path) -> None:
    img = mpimg.imread(path)
    grey = img[..., :3].mean(-1) if img.ndim == 3 else img
    assert grey.std() > 0.01, f"{path.name} is blank"


# the scaling section came after the fixture was cut: its plotter is tested on a real gloo run's record in
# tests/workloads/test_distributed_scaling.py
NO_FIXTURE = pytest.mark.skip(reason="no scaling record in the fixture tree; plotted in test_distributed_scaling.py")
PARAMS = [pytest.param(s, id=s.name, marks=NO_FIXTURE if s.name == "scaling" else ()) for s in SECTIONS]


@pytest.mark.parametrize("section", PARAMS)
def test_each_plotter_draws_its_record(section, tmp_path):
    rec = load_record(record_file(FIXTURE, "cpu", section.name), kind=section.name)
    gallery = (rec.data.get("quality") or {}).get("gallery")
    if gallery is not None and "input_u8" not in gallery:  # the fixture keeps the parameters, not the pixels
        ramp = np.tile((np.arange(64) * 4).astype(np.uint8), (64, 1))
        gallery["input_u8"] = [ramp.tolist()] * len(gallery["params"])
        gallery["output_u8"] = [ramp.T.tolist()] * len(gallery["params"])
    plot = section.entry("plot")
    paths = plot(rec, None, tmp_path, lambda base: file_name("cpu", base))
    assert paths, section.name
    for p in paths:
        assert Path(p).is_file() and Path(p).stat().st_size > 1_000, p
        _not_blank(Path(p))


def test_the_report_is_built_from_the_records_alone(tmp_path):
    from common.report import write_report

    root = tmp_path / "cpu_results"
    shutil.copytree(FIXTURE, root)
    summary = record_file(root, "cpu", "run_summary")
    rec = json.loads(summary.read_text())
    rec["environment"]["config"].update(unstable_iqr_fraction=0.25, bootstrap_resamples=777)
    summary.write_text(json.dumps(rec))
    path = write_report(root, "cpu")
    text = path.read_text()
    for sec in SECTIONS:
        assert f"### {sec.name.replace('_', ' ')}" in text
    assert "## Key numbers" in text and "(no section finished)" not in text
    assert "Winning solution" in text and "Inference batch 1 (fp32)" in text
    assert "(777 resamples)" in text and "25% of its median" in text, "the report states the run's settings"
    _not_blank(root / "reports" / "cpu_key_numbers.png")
