"""Fault injection, images: a MedNIST tree with damaged files of many kinds and stray folders.
Every damaged file is skipped or converted by the stated rule and named with its reason;
stray folders never become classes; the recipe's DataLoader workers (MONAI LoadImage) only
meet files that passed, and read converted ones as the decoded paths do."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from common.data.mednist import CLASS_NAMES, build_manifest, write_manifest
from common.report import data_problem_lines
from common.workloads.mednist_data import load_mednist

# file -> the reason it must be given (skipped), or "converted"
EXPECTED = {
    "CXR/zero.jpeg": "empty file (0 bytes)",
    "CXR/truncated.jpeg": "unreadable",
    "Hand/text.jpeg": "unreadable",
    "Hand/._000000.jpeg": "AppleDouble",
    "HeadCT/small.jpeg": "size 32x32, expected 64x64",
    "HeadCT/deep16.png": "bit depth: mode I;16",
    "ChestCT/rgb.png": "converted: mode RGB -> L",
    "ChestCT/palette.png": "converted: mode P -> L",
}
IGNORED = {"Aaa_empty": "not one of the six", "Extra": "not one of the six", "CXR/notes.txt": "not an image file",
           "stray.jpeg": "a file beside the class folders"}


@pytest.fixture
def damaged_dir(synthetic_data_dir, tmp_path) -> Path:
    data = tmp_path / "data"
    shutil.copytree(synthetic_data_dir, data)
    root = data / "MedNIST"
    good = (root / "CXR" / "000000.jpeg").read_bytes()
    (root / "CXR" / "zero.jpeg").write_bytes(b"")
    (root / "CXR" / "truncated.jpeg").write_bytes(good[: len(good) // 2])
    (root / "Hand" / "text.jpeg").write_text("this is not an image\n")
    (root / "Hand" / "._000000.jpeg").write_bytes(b"\x00\x05\x16\x07" + b"\x00" * 80)  # AppleDouble header
    Image.new("L", (32, 32), 9).save(root / "HeadCT" / "small.jpeg")
    Image.fromarray(np.full((64, 64), 40000, np.uint16)).save(root / "HeadCT" / "deep16.png")
    Image.new("RGB", (64, 64), (200, 100, 50)).save(root / "ChestCT" / "rgb.png")
    Image.new("L", (64, 64), 77).convert("P").save(root / "ChestCT" / "palette.png")
    (root / "Aaa_empty").mkdir()  # sorts first: it used to shift every label by one
    (root / "Extra").mkdir()
    Image.new("L", (64, 64), 5).save(root / "Extra" / "x.jpeg")
    (root / "CXR" / "notes.txt").write_text("notes")
    Image.new("L", (64, 64), 5).save(root / "stray.jpeg")
    write_manifest(root, build_manifest(root, "archive"))  # as if the archive had held them
    return data


def _rel(items, root):
    return {str(Path(p).relative_to(root)): why for p, why in items}


def test_every_damaged_file_is_named_with_its_rule(damaged_dir):
    data = load_mednist(damaged_dir, 0.1, 0.1, seed=0)
    root = damaged_dir / "MedNIST"
    skipped, converted, ignored = _rel(data.skipped, root), _rel(data.converted, root), _rel(data.ignored, root)
    for name, why in EXPECTED.items():
        got = converted.get(name) if why.startswith("converted") else skipped.get(name)
        assert got is not None and got.startswith(why), (name, got)
    assert len(skipped) == 6 and len(converted) == 2
    for name, why in IGNORED.items():
        assert why in ignored[name]
    used = set(data.split.train_paths + data.split.val_paths + data.split.test_paths)
    assert not used & {p for p, _ in data.skipped}
    assert not any("Extra" in p or "stray" in p for p in used)
    labels = set(data.split.train_labels + data.split.val_labels + data.split.test_labels)
    assert labels == set(range(len(CLASS_NAMES))) and data.class_names == list(CLASS_NAMES)
    lines = "\n".join(data_problem_lines(data.problems()))
    for name in [*EXPECTED, *IGNORED]:
        assert name in lines


def test_recipe_workers_read_only_checked_files(damaged_dir):
    """The tutorial recipe (LoadImage in DataLoader workers) runs over every training file
    and reads a converted file with the same pixels as the decoded arrays."""
    import torch

    from common.workloads.mednist_data import TutorialDataset, make_loader

    data = load_mednist(damaged_dir, 0.0, 0.0, seed=0)  # everything in training: the damaged files too
    paths, labels = data.train_paths_labels()
    assert str(damaged_dir / "MedNIST" / "ChestCT" / "rgb.png") in paths
    loader = make_loader(TutorialDataset(paths, labels), batch_size=32, num_workers=1, seed=0, shuffle=False)
    seen = sum(len(y) for _, y, _ in loader)
    assert seen == len(paths) == 6 * 20 + 2
    from monai.transforms import EnsureChannelFirst

    from common.transforms import _load_image

    rgb = EnsureChannelFirst()(_load_image()(str(damaged_dir / "MedNIST" / "ChestCT" / "rgb.png")))
    imgs, _ = data.arrays("train")
    i = paths.index(str(damaged_dir / "MedNIST" / "ChestCT" / "rgb.png"))
    assert torch.equal(torch.as_tensor(np.asarray(rgb))[0].to(torch.uint8), torch.from_numpy(imgs[i]))


def test_a_class_with_no_decodable_image_is_refused(synthetic_data_dir, tmp_path):
    from common.errors import UserError

    data = tmp_path / "data"
    shutil.copytree(synthetic_data_dir, data)
    root = data / "MedNIST"
    for p in (root / "Hand").iterdir():
        p.write_bytes(b"")
    write_manifest(root, build_manifest(root, "archive"))
    with pytest.raises(UserError, match="no decodable image for class.*Hand"):
        load_mednist(data, 0.1, 0.1, seed=0)
