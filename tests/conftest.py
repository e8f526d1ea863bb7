"""Shared fixtures. Data sets are made once per session in temporary folders; tests must
not modify them (copy first)."""

from __future__ import annotations

import os
import sys
import tarfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# the comparison's fixture trees are marked synthetic_fixture and refused outside tests
os.environ.setdefault("SUITE_ALLOW_FIXTURES", "1")
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

SAMPLE_ARCHIVE = Path(
    os.environ.get("MEDNIST_SAMPLE_ARCHIVE", REPO.parent / "shared" / "data" / "MedNIST-sample.tar.gz")
)


@pytest.fixture(scope="session")
def mednist_sample_archive() -> Path:
    """The real MedNIST subset (12,000 JPEGs, 2,000 per class); skipped where absent."""
    if not SAMPLE_ARCHIVE.is_file():
        pytest.skip(f"real MedNIST sample not found at {SAMPLE_ARCHIVE} (set MEDNIST_SAMPLE_ARCHIVE)")
    return SAMPLE_ARCHIVE


@pytest.fixture(scope="session")
def sample_data_dir(mednist_sample_archive, tmp_path_factory) -> Path:
    """A data dir holding the real sample extracted and verified (DIR/MedNIST); read-only use."""
    from common.data.extract import extract_mednist

    data_dir = tmp_path_factory.mktemp("sample_data")
    extract_mednist(mednist_sample_archive, data_dir, progress=False)
    return data_dir


@pytest.fixture(scope="session")
def synthetic_data_dir(tmp_path_factory) -> Path:
    """A data dir with a small synthetic MedNIST (20 images per class, seed 0); read-only use."""
    from common.data.synthetic import generate_synthetic

    data_dir = tmp_path_factory.mktemp("synthetic_data")
    generate_synthetic(data_dir, n_per_class=20, seed=0)
    return data_dir


@pytest.fixture(scope="session")
def tiny_mednist_archive(tmp_path_factory) -> Path:
    """A small MedNIST-layout .tar.gz (3 synthetic images per class, no manifest inside)."""
    from common.data.synthetic import generate_synthetic

    work = tmp_path_factory.mktemp("tiny_archive")
    root = generate_synthetic(work / "src", n_per_class=3, seed=1)
    archive = work / "MedNIST.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(root, arcname="MedNIST", filter=lambda m: None if m.name.endswith("manifest.json") else m)
    return archive
