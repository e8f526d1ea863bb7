"""common.data.mednist: verification, discovery, split and decoding."""

from __future__ import annotations

import json
import shutil
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from common.data.mednist import (
    CLASS_NAMES,
    Split,
    decode_images,
    is_verified,
    list_images,
    load_manifest,
    mednist_root,
    split_dataset,
)
from common.errors import UserError


@pytest.fixture
def synthetic_copy(synthetic_data_dir, tmp_path):
    shutil.copytree(synthetic_data_dir, tmp_path / "data")
    return tmp_path / "data"


def test_class_names():
    assert CLASS_NAMES == ("AbdomenCT", "BreastMRI", "CXR", "ChestCT", "Hand", "HeadCT")
    assert list(CLASS_NAMES) == sorted(CLASS_NAMES)


# --- verification -------------------------------------------------------------------


def test_mednist_root_of_verified_tree(synthetic_data_dir):
    root = mednist_root(synthetic_data_dir)
    assert root == synthetic_data_dir / "MedNIST"
    assert mednist_root(root) == root  # the MedNIST folder itself is accepted too
    assert load_manifest(synthetic_data_dir)["total"] == 120


def test_missing_data_names_folder_and_fix(tmp_path):
    with pytest.raises(UserError) as err:
        mednist_root(tmp_path)
    msg = str(err.value)
    assert str(tmp_path / "MedNIST") in msg and "python download_mednist.py" in msg
    assert "--from-archive" in msg and "--synthetic" in msg


def test_tree_without_manifest_is_not_verified(synthetic_copy):
    (synthetic_copy / "MedNIST" / "manifest.json").unlink()
    assert not is_verified(synthetic_copy)
    with pytest.raises(UserError, match="no manifest.json"):
        mednist_root(synthetic_copy)
    with pytest.raises(UserError, match="no MedNIST manifest"):
        load_manifest(synthetic_copy)


def test_count_mismatch_is_not_verified(synthetic_copy):
    (synthetic_copy / "MedNIST" / "Hand" / "000003.jpeg").unlink()
    with pytest.raises(UserError, match="Hand holds 19 images, the manifest says 20"):
        mednist_root(synthetic_copy)


def test_corrupt_manifest(synthetic_copy):
    (synthetic_copy / "MedNIST" / "manifest.json").write_text("{not json")
    with pytest.raises(UserError, match="unreadable"):
        mednist_root(synthetic_copy)
    with pytest.raises(UserError, match="unreadable"):
        load_manifest(synthetic_copy)


def test_manifest_fields(synthetic_data_dir):
    m = load_manifest(synthetic_data_dir)
    for key in (
        "source",
        "url",
        "archive_path",
        "archive_md5",
        "class_counts",
        "total",
        "image_size",
        "image_mode",
        "synthetic",
        "created_utc",
        "manifest_version",
    ):
        assert key in m
    assert m["manifest_version"] == 1 and m["created_utc"].endswith("+00:00")
    assert m["image_size"] == [64, 64] and m["image_mode"] == "L" and m["image_check"]["checked"] == 18


# --- discovery and split --------------------------------------------------------------


def test_list_images(synthetic_data_dir):
    paths, labels, names = list_images(mednist_root(synthetic_data_dir))
    assert names == list(CLASS_NAMES) and len(paths) == 120 == len(labels)
    assert Counter(labels) == {k: 20 for k in range(6)}
    assert paths == sorted(paths)
    assert all(f"/{names[lab]}/" in p for p, lab in zip(paths, labels, strict=True))


def _toy(n_per_class=10, classes="ABC"):
    paths = [f"/d/{c}/{i:04d}.jpeg" for c in classes for i in range(n_per_class)]
    labels = [k for k in range(len(classes)) for _ in range(n_per_class)]
    return paths, labels


def test_split_is_stratified_disjoint_and_complete():
    paths, labels = _toy(20)
    s = split_dataset(paths, labels, 0.1, 0.1, seed=0)
    assert isinstance(s, Split)
    c = s.counts()
    assert (c["train"], c["val"], c["test"]) == (48, 6, 6)
    assert c["train_per_class"] == {0: 16, 1: 16, 2: 16} and c["val_per_class"] == {0: 2, 1: 2, 2: 2}
    parts = [s.train_paths, s.val_paths, s.test_paths]
    assert sorted(sum(parts, [])) == sorted(paths)
    for part_paths, part_labels in zip(parts, [s.train_labels, s.val_labels, s.test_labels], strict=True):
        assert [labels[paths.index(p)] for p in part_paths] == part_labels


def test_split_is_deterministic_and_order_independent():
    paths, labels = _toy(30)
    a = split_dataset(paths, labels, 0.1, 0.1, seed=3)
    order = np.random.default_rng(99).permutation(len(paths))
    b = split_dataset([paths[i] for i in order], [labels[i] for i in order], 0.1, 0.1, seed=3)
    assert a == b
    assert split_dataset(paths, labels, 0.1, 0.1, seed=4) != a


def test_split_is_the_same_on_any_machine():
    """Golden values: numpy's default_rng(seed) permutation is stable across platforms."""
    paths, labels = _toy(10)
    s = split_dataset(paths, labels, 0.2, 0.1, seed=0)
    assert s.val_paths == [
        "/d/A/0004.jpeg",
        "/d/A/0006.jpeg",
        "/d/B/0002.jpeg",
        "/d/B/0009.jpeg",
        "/d/C/0004.jpeg",
        "/d/C/0005.jpeg",
    ]
    assert s.test_paths == ["/d/A/0002.jpeg", "/d/B/0003.jpeg", "/d/C/0009.jpeg"]


def test_max_train_caps_training_set_stratified():
    paths, labels = _toy(50, "ABCDEF")
    s = split_dataset(paths, labels, 0.1, 0.1, seed=0, max_train=100)
    c = s.counts()
    assert c["train"] == 100 and set(c["train_per_class"].values()) <= {16, 17}
    assert c["val"] == 30 and c["test"] == 30  # validation and test untouched
    full = split_dataset(paths, labels, 0.1, 0.1, seed=0)
    assert set(s.train_paths) <= set(full.train_paths) and s.val_paths == full.val_paths


def test_split_rejects_bad_fractions():
    paths, labels = _toy(5)
    with pytest.raises(UserError, match="VAL_FRACTION"):
        split_dataset(paths, labels, 0.6, 0.5, seed=0)
    with pytest.raises(UserError, match="max_train"):
        split_dataset(paths, labels, 0.1, 0.1, seed=0, max_train=0)


# --- decoding -------------------------------------------------------------------------


def test_decode_skips_bad_images_and_names_them(synthetic_data_dir, tmp_path, capsys):
    paths, _, _ = list_images(mednist_root(synthetic_data_dir))
    good = paths[:3]
    Image.new("L", (32, 32)).save(tmp_path / "small.jpeg")
    Image.new("RGB", (64, 64), (200, 100, 50)).save(tmp_path / "rgb.png")
    (tmp_path / "text.jpeg").write_text("not an image")
    data = open(good[0], "rb").read()
    (tmp_path / "cut.jpeg").write_bytes(data[: len(data) // 3])
    bad = [str(tmp_path / n) for n in ("small.jpeg", "rgb.png", "text.jpeg", "cut.jpeg")]
    result = decode_images([good[0], bad[0], good[1], bad[1], bad[2], good[2], bad[3]], progress=True)
    assert result.images.dtype == np.uint8 and result.images.shape == (4, 64, 64)
    assert result.kept_indices == [0, 2, 3, 5]
    reasons = dict(result.skipped)
    assert reasons[bad[0]] == "size 32x32, expected 64x64"
    assert reasons[bad[2]].startswith("unreadable") and reasons[bad[3]].startswith("unreadable")
    assert np.array_equal(result.images[0], np.asarray(Image.open(good[0])))
    assert int(result.images[2].mean()) == int(np.asarray(Image.new("RGB", (1, 1), (200, 100, 50)).convert("L"))[0, 0])
    assert "decode" in capsys.readouterr().err


def test_decode_real_sample(sample_data_dir):
    root = mednist_root(sample_data_dir)
    paths, labels, names = list_images(root)
    assert len(paths) == 12_000 and names == list(CLASS_NAMES)
    result = decode_images(paths)
    assert result.images.shape == (12_000, 64, 64) and result.skipped == []
    assert result.kept_indices == list(range(12_000))
    assert json.loads((root / "manifest.json").read_text())["image_mode"] == "L"
