"""The real MedNIST subset shipped in the repository: intact, licensed, and labelled as a subset."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import config
import download_mednist
from common.data.download import md5sum

REPO = Path(__file__).resolve().parents[2]
ARCHIVE = REPO / config.EMBEDDED_MEDNIST_ARCHIVE


def test_embedded_archive_is_small_real_and_matches_its_md5():
    assert ARCHIVE.is_file()
    assert ARCHIVE.stat().st_size < 1_000_000
    assert md5sum(ARCHIVE) == config.EMBEDDED_MEDNIST_MD5
    with tarfile.open(ARCHIVE) as tf:
        names = [m.name for m in tf.getmembers() if m.isfile()]
    per_class = {}
    for n in names:
        parts = n.split("/")
        assert parts[0] == "MedNIST" and len(parts) == 3 and parts[2].endswith(".jpeg"), n
        per_class[parts[1]] = per_class.get(parts[1], 0) + 1
    assert per_class == {c: 60 for c in ("AbdomenCT", "BreastMRI", "CXR", "ChestCT", "Hand", "HeadCT")}
    text = (ARCHIVE.parent / "README.md").read_text()
    assert "CC BY-SA 4.0" in text and "Erickson" in text and "TCIA" in text


def test_from_embedded_extracts_labelled_subset_then_reuses_it(tmp_path, capsys):
    assert download_mednist.main(["--data-dir", str(tmp_path), "--from-embedded"]) == 0
    manifest = json.loads((tmp_path / "MedNIST" / "manifest.json").read_text())
    assert manifest["source"] == "embedded subset" and manifest["total"] == 360 and not manifest["synthetic"]
    assert manifest["archive_md5"] == config.EMBEDDED_MEDNIST_MD5
    capsys.readouterr()
    assert download_mednist.main(["--data-dir", str(tmp_path), "--from-embedded"]) == 0
    assert "already verified" in capsys.readouterr().out


def test_from_embedded_refuses_md5(tmp_path, capsys):
    assert download_mednist.main(["--data-dir", str(tmp_path), "--from-embedded", "--md5", "0" * 32]) != 0
    assert "--from-embedded" in capsys.readouterr().err


def test_makefile_names_no_path_outside_the_repository():
    text = (REPO / "Makefile").read_text()
    assert "../" not in text
    assert "--from-embedded" in text
