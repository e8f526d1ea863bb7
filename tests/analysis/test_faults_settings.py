"""Fault injection, settings: every constant of config.py has a rule; bad values (table below),
bad flags, a results path that is a file, a broken config.py and bad volume contents are each
refused before any work with one line naming the constant (or file), the value and what is
allowed; nothing already in the results tree changes."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import config
from common.cli import RULES, validate_config
from common.errors import UserError

REPO = Path(__file__).resolve().parents[2]


def _values(**over):
    values = {k: getattr(config, k) for k in dir(config) if k.isupper()}
    values.update(over)
    return values


def test_every_config_constant_has_a_rule():
    names = {k for k in dir(config) if k.isupper()}
    assert names - set(RULES) == set(), "add a rule in common/cli.py RULES for each new constant"
    validate_config(_values())  # the shipped values pass


BAD = [  # (constant, value, words the message must hold)
    ("LEARNING_RATE", float("nan"), "a finite number in (0, 10]"),
    ("LEARNING_RATE", float("inf"), "finite"),
    ("BATCH_SIZE", 0, "a positive integer"),
    ("BATCH_SIZE", 2.5, "a positive integer"),
    ("SAMPLE_HZ", 1000.0, "from 0.1 to 100"),
    ("WINNER_MAX_J_PER_IMAGE", "abc", "None (off) or a positive finite number"),
    ("WINNER_MAX_J_PER_IMAGE", -1.0, "None (off) or a positive"),
    ("ENERGY_WINDOW_S", -5, "a positive finite number of seconds"),
    ("LADDER_SEEDS", (), "a non-empty tuple of distinct integers >= 0"),
    ("LADDER_SEEDS", (1, 1), "distinct"),
    ("LADDER_SEEDS", (-1,), "integers >= 0"),
    ("QUICK_LADDER_SEEDS", ("a",), "distinct integers"),
    ("ENERGY_WINDOW_S", float("nan"), "positive finite"),
    ("QUICK_ENERGY_WINDOW_S", 0, "positive finite"),
    ("VOLUME_SPACING_MM", float("inf"), "from 0.1 to 50"),
    ("CACHE_DIR", "", "a folder path"),
    ("MEDNIST_MD5", "xyz", "32 hex digits"),
    ("MEDNIST_URL", "ftp://x", "http(s)://"),
    ("SEED", -1, "an integer >= 0"),
    ("TARGET_VAL_ACCURACY", 1.5, "strictly between 0 and 1"),
    ("NUM_WORKERS", -2, "None (auto)"),
    ("QUICK_CUDNN_BENCHMARK", "yes", "True or False"),
    ("PATCH_SIZE", 36, "a multiple of 8"),
    ("SYNTHETIC_PER_CLASS", 10**9, "from 1 to 10,000"),
    ("BATCH_SIZES", (64, 0), "non-empty tuple of positive integers"),
]


@pytest.mark.parametrize("name, value, words", BAD, ids=[f"{n}={v!r}" for n, v, _ in BAD])
def test_bad_constant_is_named_with_value_and_range(name, value, words):
    with pytest.raises(UserError) as info:
        validate_config(_values(**{name: value}))
    msg = str(info.value)
    assert f"config.{name} = {value!r}" in msg and words in msg and "\n" not in msg


def _snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def results(tmp_path) -> Path:
    root = tmp_path / "res" / "cpu_results" / "metrics"
    root.mkdir(parents=True)
    (root / "cpu_pipeline_deep_dive.json").write_text('{"earlier": "result"}\n')
    return tmp_path / "res"


@pytest.mark.parametrize("argv, words", [
    (["--lr", "nan"], "config.LEARNING_RATE = nan"),
    (["--batch-size", "-3"], "config.BATCH_SIZE = -3"),
    (["--set", "WINNER_MAX_J_PER_IMAGE='abc'"], "config.WINNER_MAX_J_PER_IMAGE = 'abc'"),
    (["--set", "ENERGY_WINDOW_S=-5"], "config.ENERGY_WINDOW_S = -5"),
    (["--volume-spacing", "inf"], "config.VOLUME_SPACING_MM = inf"),
])
def test_bad_flags_refused_before_any_work(argv, words, results, capsys):
    from common.analysis.engine import main_for

    before = _snapshot(results)
    rc = main_for("cpu")([*argv, "--results-dir", str(results)])
    err = capsys.readouterr().err
    assert rc == 2 and words in err and err.count("\n") == 1 and "Traceback" not in err
    assert _snapshot(results) == before and not (results / "cpu_results" / ".lock").exists()


def test_results_path_that_is_a_file(tmp_path, capsys):
    from common.analysis.engine import main_for

    path = tmp_path / "results.txt"
    path.write_text("keep me\n")
    rc = main_for("cpu")(["--results-dir", str(path), "--quick"])
    err = capsys.readouterr().err
    assert rc == 2 and "config.RESULTS_DIR" in err and "it is a file, not a folder" in err
    assert path.read_text() == "keep me\n"


@pytest.mark.parametrize("broken, line", [("BATCH_SIZE = 300 +\n", 3), ("SEED = undefined_name\n", 3)])
def test_broken_config_py_gives_one_line(broken, line, tmp_path):
    """A copy of the scripts with a broken config.py: each script says file and line."""
    for name in ("common", "download_mednist.py", "comprehensive_cpu_analysis.py"):
        src = REPO / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, tmp_path / name)
    (tmp_path / "config.py").write_text('"""settings"""\n\n' + broken)
    for script in ("download_mednist.py", "comprehensive_cpu_analysis.py"):
        proc = subprocess.run([sys.executable, str(tmp_path / script), "--help"], capture_output=True, text=True,
                              cwd=tmp_path, timeout=120)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
        assert proc.stderr.count("\n") == 1 and f"config.py, line {line}" in proc.stderr


def _nifti(path: Path, data: np.ndarray, zooms=(1.0, 1.0, 1.0)) -> Path:
    import nibabel as nib

    img = nib.Nifti1Image(data, np.eye(4))
    img.header.set_zooms(zooms)
    nib.save(img, str(path))
    return path


@pytest.mark.parametrize("case, words", [
    ("spacing_inf", "voxel spacing (inf, 1.0, 1.0) mm"),
    ("label_1000", "class value 1000: allowed are 0 to 31"),
    ("nan_voxels", "NaN or infinite voxel"),
])
def test_bad_volume_contents_refused_when_loaded(case, words, tmp_path):
    from common.data.volumes import load_user_volume

    data = np.ones((8, 8, 8), np.float32)
    label = np.zeros((8, 8, 8), np.int16)
    if case == "nan_voxels":
        data[0, 0, 0] = np.nan
    if case == "label_1000":
        label[1, 1, 1] = 1000
    vol = _nifti(tmp_path / "v.nii.gz", data)
    if case == "spacing_inf":
        import nibabel as nib

        img = nib.load(str(vol))
        hdr = img.header.copy()
        hdr["pixdim"][1] = np.inf
        nib.save(nib.Nifti1Image(data, None, hdr), str(vol))
    lab = _nifti(tmp_path / "l.nii.gz", label)
    with pytest.raises(UserError) as info:
        load_user_volume(vol, lab)
    assert words in str(info.value) and str(tmp_path) in str(info.value)
