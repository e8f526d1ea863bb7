"""common.data.synthetic and `download_mednist.py --synthetic`."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

import config
import download_mednist
from common.data.mednist import CLASS_NAMES, decode_images, list_images, mednist_root
from common.data.synthetic import generate_synthetic
from common.errors import UserError


def test_layout_manifest_and_format(synthetic_data_dir):
    root = mednist_root(synthetic_data_dir)
    for cls in CLASS_NAMES:
        names = sorted(p.name for p in (root / cls).iterdir())
        assert names == [f"{i:06d}.jpeg" for i in range(20)]
    m = json.loads((root / "manifest.json").read_text())
    assert m["synthetic"] is True and m["source"] == "synthetic" and m["seed"] == 0 and m["n_per_class"] == 20
    assert m["image_size"] == [64, 64] and m["image_mode"] == "L" and m["archive_md5"] is None


def test_deterministic_for_a_seed(tmp_path):
    a = generate_synthetic(tmp_path / "a", 4, seed=7)
    b = generate_synthetic(tmp_path / "b", 4, seed=7)
    c = generate_synthetic(tmp_path / "c", 4, seed=8)
    files = [p.relative_to(a) for p in sorted(a.rglob("*.jpeg"))]
    assert len(files) == 24
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)
    assert any((a / f).read_bytes() != (c / f).read_bytes() for f in files)
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["MedNIST"]  # no staging folder left


def test_classes_are_learnable(synthetic_data_dir):
    """A nearest-centroid classifier separates the classes: the structure is class-dependent."""
    paths, labels, _ = list_images(mednist_root(synthetic_data_dir))
    x = decode_images(paths).images.reshape(len(paths), -1).astype(np.float32) / 255
    y = np.array(labels)
    train = np.arange(len(y)) % 2 == 0
    centroids = np.stack([x[train & (y == k)].mean(0) for k in range(6)])
    pred = np.argmin(((x[~train, None, :] - centroids[None]) ** 2).sum(-1), axis=1)
    assert (pred == y[~train]).mean() > 0.9


def test_rejects_zero_images(tmp_path):
    with pytest.raises(UserError, match="out of range: give 1 to"):
        generate_synthetic(tmp_path, 0)
    assert not (tmp_path / "MedNIST").exists()


def test_cli_synthetic_50_then_noop(tmp_path, capsys):
    argv = ["--synthetic", "50", "--data-dir", str(tmp_path)]
    assert download_mednist.main(argv) == 0
    m = json.loads((tmp_path / "MedNIST" / "manifest.json").read_text())
    assert m["total"] == 300 and m["synthetic"] is True and m["class_counts"] == {c: 50 for c in CLASS_NAMES}
    assert "[SYNTHETIC]" in capsys.readouterr().out

    start = time.perf_counter()
    assert download_mednist.main(argv) == 0
    assert time.perf_counter() - start < 1.0
    assert "already verified" in capsys.readouterr().out
    assert json.loads((tmp_path / "MedNIST" / "manifest.json").read_text()) == m

    assert download_mednist.main(["--synthetic", "2", "--data-dir", str(tmp_path)]) == 0  # another size: redone
    assert json.loads((tmp_path / "MedNIST" / "manifest.json").read_text())["total"] == 12


def test_cli_synthetic_default_count_comes_from_config():
    assert download_mednist.build_parser().parse_args(["--synthetic"]).synthetic == config.SYNTHETIC_PER_CLASS


def test_synthetic_data_does_not_satisfy_a_real_request(tmp_path, tiny_mednist_archive):
    assert download_mednist.main(["--synthetic", "2", "--data-dir", str(tmp_path)]) == 0
    assert download_mednist.main(["--from-archive", str(tiny_mednist_archive), "--data-dir", str(tmp_path)]) == 0
    m = json.loads((tmp_path / "MedNIST" / "manifest.json").read_text())
    assert m["synthetic"] is False and m["total"] == 18
