"""common.data.volumes: user NIfTI, MNI152 from nilearn's package, phantom fallback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from common.data import volumes
from common.data.volumes import TISSUE_CLASSES, load_volume, mni152_paths, synthetic_phantom, tissue_labels
from common.errors import UserError


def _save(path, data, affine=None):
    nib.save(nib.Nifti1Image(data, np.diag([2.0, 2.0, 3.0, 1.0]) if affine is None else affine), str(path))
    return path


@pytest.fixture
def user_files(tmp_path):
    rng = np.random.default_rng(0)
    image = _save(tmp_path / "img.nii.gz", rng.random((10, 12, 14)).astype(np.float32))
    label = _save(tmp_path / "lab.nii.gz", rng.integers(0, 3, (10, 12, 14)).astype(np.int16))
    return image, label


def test_user_volume_with_label(user_files):
    image, label = user_files
    v = load_volume(image, label)
    assert v.image.dtype == np.float32 and v.image.shape == (10, 12, 14)
    assert v.label.dtype == np.int64 and v.label.shape == v.image.shape and set(np.unique(v.label)) == {0, 1, 2}
    assert v.spacing == (2.0, 2.0, 3.0) and v.affine.shape == (4, 4)
    assert v.source == "user" and v.synthetic is False
    assert v.class_names == ["background", "class_1", "class_2"]
    assert v.image_path == str(image) and v.label_path == str(label)
    d = json.loads(json.dumps(v.describe()))
    assert d["shape"] == [10, 12, 14] and d["spacing_mm"] == [2.0, 2.0, 3.0]
    assert sum(d["label_counts"].values()) == 10 * 12 * 14


def test_user_volume_without_label_and_4d_singleton(tmp_path):
    path = _save(tmp_path / "img4d.nii", np.ones((8, 9, 10, 1), dtype=np.int16))
    v = load_volume(path)
    assert v.image.shape == (8, 9, 10) and v.image.dtype == np.float32
    assert v.label is None and v.class_names == [] and v.describe()["label_counts"] is None


def test_label_shape_mismatch_names_both_files(user_files, tmp_path):
    image, _ = user_files
    other = _save(tmp_path / "small_lab.nii.gz", np.zeros((5, 5, 5), dtype=np.uint8))
    with pytest.raises(UserError) as err:
        load_volume(image, other)
    msg = str(err.value)
    assert str(image) in msg and str(other) in msg and "(5, 5, 5)" in msg and "(10, 12, 14)" in msg


def test_missing_and_corrupt_files_are_named(tmp_path, user_files):
    with pytest.raises(UserError, match="nope.nii.gz not found"):
        load_volume(tmp_path / "nope.nii.gz")
    bad = tmp_path / "bad.nii.gz"
    bad.write_bytes(b"garbage" * 50)
    with pytest.raises(UserError, match="cannot read volume file .*bad.nii.gz"):
        load_volume(bad)
    with pytest.raises(UserError, match="label file .*nolabel.nii.gz not found"):
        load_volume(user_files[0], tmp_path / "nolabel.nii.gz")
    with pytest.raises(UserError, match="needs --volume"):
        load_volume(None, user_files[1])


def test_bad_shapes_and_labels(tmp_path, user_files):
    with pytest.raises(UserError, match="3D volume"):
        load_volume(_save(tmp_path / "2d.nii", np.zeros((4, 4), dtype=np.float32)))
    frac = _save(tmp_path / "frac.nii", np.full((10, 12, 14), 0.5, dtype=np.float32))
    with pytest.raises(UserError, match="non-integer"):
        load_volume(user_files[0], frac)


def test_default_is_mni152_from_nilearn_package():
    if mni152_paths() is None:
        pytest.skip("nilearn (with its MNI152 files) is not installed")
    v = load_volume()
    assert v.source == "mni152" and v.synthetic is False
    assert v.image.shape == (197, 233, 189) and v.label.shape == v.image.shape
    assert v.spacing == (1.0, 1.0, 1.0) and v.class_names == TISSUE_CLASSES
    counts = v.describe()["label_counts"]
    assert set(counts) == set(TISSUE_CLASSES) and counts["grey_matter"] > 500_000 and counts["white_matter"] > 300_000
    assert v.label[0, 0, 0] == 0 and v.label[-1, -1, -1] == 0  # outside the brain: background
    assert len(v.label_sources) == 2 and "gm" in v.label_sources[0] and "wm" in v.label_sources[1]


def test_mni152_lookup_does_not_import_nilearn():
    code = "import sys; from common.data.volumes import mni152_paths; mni152_paths(); print('nilearn' in sys.modules)"
    repo = Path(volumes.__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=repo)
    assert out.stdout.strip() == "False"


def test_phantom_when_nilearn_is_absent(monkeypatch):
    monkeypatch.setattr(volumes, "mni152_paths", lambda: None)
    v = load_volume()
    assert v.source == "synthetic_phantom" and v.synthetic is True
    assert v.image.shape == (96, 96, 96) and v.image.dtype == np.float32 and v.label.dtype == np.int64
    assert v.class_names == TISSUE_CLASSES and set(np.unique(v.label)) == {0, 1, 2}
    assert v.image_path is None and v.describe()["synthetic"] is True
    assert np.array_equal(v.image, synthetic_phantom().image)  # deterministic
    white = v.image[v.label == 2].mean()
    grey = v.image[v.label == 1].mean()
    assert white > grey > v.image[v.label == 0].mean()


def test_tissue_labels_match_argmax():
    rng = np.random.default_rng(1)
    gm = rng.random((20, 20, 20)).astype(np.float32) * 0.7
    wm = rng.random((20, 20, 20)).astype(np.float32) * 0.7
    gm[0], wm[0] = 0.25, 0.25  # background (0.5) wins
    gm[1], wm[1] = 0.5, 0.5  # background 0; a gm/wm tie goes to gm, as argmax
    expected = np.argmax(np.stack([np.clip(1 - gm - wm, 0, None), gm, wm]), axis=0)
    assert np.array_equal(tissue_labels(gm, wm), expected)


def test_probability_scaling():
    assert volumes._probability(np.array([0, 255], dtype=np.uint8)).tolist() == [0.0, 1.0]
    assert volumes._probability(np.array([0.0, 0.5])).tolist() == [0.0, 0.5]
