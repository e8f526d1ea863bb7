"""common.data.extract: member checks, corrupt archives, staging and installation."""

from __future__ import annotations

import errno
import io
import json
import tarfile
import zipfile
from pathlib import Path

import pytest

import download_mednist
from common.data.download import md5sum
from common.data.extract import check_tar_members, extract_mednist, safe_extract
from common.data.mednist import CLASS_NAMES, is_verified
from common.errors import UserError


def _info(name: str, kind: bytes = tarfile.REGTYPE, link: str = "", data: bytes = b"") -> tuple:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size = kind, link, len(data)
    return info, data


def _write_tar(path: Path, entries: list[tuple], base: Path | None = None) -> Path:
    """A .tar.gz with ``entries`` (TarInfo, data), after the members of ``base`` if given."""
    with tarfile.open(path, "w:gz") as tf:
        if base is not None:
            with tarfile.open(base) as src:
                for m in src.getmembers():
                    tf.addfile(m, src.extractfile(m) if m.isfile() else None)
        for info, data in entries:
            tf.addfile(info, io.BytesIO(data) if info.isfile() else None)
    return path


def _assert_nothing_kept(data_dir: Path, outside: Path):
    """No DIR/MedNIST, no staging folder, nothing escaped next to DIR."""
    assert not (data_dir / "MedNIST").exists()
    assert not data_dir.exists() or not any(data_dir.iterdir())
    assert {p.name for p in outside.iterdir()} <= {"data", "a.tar.gz"}  # refused before DIR was made, or emptied


EVIL = {
    "dotdot": [_info("../escape.txt", data=b"x")],
    "nested_dotdot": [_info("MedNIST/Hand/../../../escape.txt", data=b"x")],
    "absolute": [_info("/tmp/escape_abs.txt", data=b"x")],
    "symlink_out": [_info("MedNIST/link", tarfile.SYMTYPE, "../../escape")],
    "symlink_abs": [_info("MedNIST/link", tarfile.SYMTYPE, "/etc")],
    "hardlink_out": [_info("MedNIST/hard", tarfile.LNKTYPE, "../escape.txt")],
    "device": [_info("MedNIST/dev", tarfile.CHRTYPE)],
    "fifo": [_info("MedNIST/fifo", tarfile.FIFOTYPE)],
    "through_symlink": [
        _info("MedNIST/inner", tarfile.SYMTYPE, "Hand"),
        _info("MedNIST/inner/x.jpeg", data=b"x"),
    ],
    "symlink_chain": [
        _info("MedNIST/a", tarfile.SYMTYPE, "."),
        _info("MedNIST/b", tarfile.SYMTYPE, "a/../.."),
    ],
}


@pytest.mark.parametrize("case", sorted(EVIL))
def test_escaping_members_are_refused_and_nothing_kept(case, tiny_mednist_archive, tmp_path):
    entries = EVIL[case]
    archive = _write_tar(tmp_path / "a.tar.gz", entries, base=tiny_mednist_archive)
    data_dir = tmp_path / "data"
    with pytest.raises(UserError, match="refused archive member") as err:
        extract_mednist(archive, data_dir, progress=False)
    assert repr(entries[-1][0].name) in str(err.value)
    _assert_nothing_kept(data_dir, tmp_path)
    assert not Path("/tmp/escape_abs.txt").exists()


def test_cli_refuses_dotdot_member_naming_it(tiny_mednist_archive, tmp_path, capsys):
    archive = _write_tar(tmp_path / "a.tar.gz", [_info("../escape.txt", data=b"x")], base=tiny_mednist_archive)
    data_dir = tmp_path / "data"
    assert download_mednist.main(["--from-archive", str(archive), "--data-dir", str(data_dir)]) != 0
    err = capsys.readouterr().err
    assert "error: refused archive member '../escape.txt'" in err
    _assert_nothing_kept(data_dir, tmp_path)


def test_zip_member_escaping_is_refused(tmp_path):
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("MedNIST/Hand/0.jpeg", b"x")
        zf.writestr("../escape.txt", b"x")
    with pytest.raises(UserError, match="'../escape.txt'"):
        safe_extract(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_symlink_inside_the_tree_is_accepted():
    members = [_info("MedNIST/Hand/a.jpeg", data=b"x")[0], _info("MedNIST/Hand/b.jpeg", tarfile.SYMTYPE, "a.jpeg")[0]]
    check_tar_members(members)
    check_tar_members([_info("MedNIST/x", tarfile.SYMTYPE, "../MedNIST/Hand")[0]])


def test_tiny_archive_extracts_with_manifest(tiny_mednist_archive, tmp_path):
    root = extract_mednist(tiny_mednist_archive, tmp_path, progress=False)
    assert root == tmp_path / "MedNIST" and is_verified(tmp_path)
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["class_counts"] == {c: 3 for c in CLASS_NAMES} and manifest["total"] == 18
    assert manifest["archive_md5"] == md5sum(tiny_mednist_archive)
    assert manifest["archive_path"] == str(tiny_mednist_archive.resolve())
    assert manifest["source"] == "archive" and manifest["synthetic"] is False
    assert sorted(p.name for p in tmp_path.iterdir()) == ["MedNIST"]


def test_zip_archive_is_supported(tiny_mednist_archive, tmp_path):
    archive = tmp_path / "m.zip"
    with tarfile.open(tiny_mednist_archive) as tf, zipfile.ZipFile(archive, "w") as zf:
        for m in tf.getmembers():
            if m.isfile():
                zf.writestr(m.name, tf.extractfile(m).read())
    root = extract_mednist(archive, tmp_path / "data", progress=False)
    assert json.loads((root / "manifest.json").read_text())["total"] == 18


@pytest.mark.parametrize("keep", [0.5, 0.9, 0.99])
def test_truncated_archive_fails_clearly(keep, tiny_mednist_archive, tmp_path):
    data = tiny_mednist_archive.read_bytes()
    archive = tmp_path / "a.tar.gz"
    archive.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(UserError, match="truncated or corrupt"):
        extract_mednist(archive, tmp_path / "data", progress=False)
    _assert_nothing_kept(tmp_path / "data", tmp_path)


def test_cli_truncated_archive_exits_nonzero_without_tree(tiny_mednist_archive, tmp_path, capsys):
    data = tiny_mednist_archive.read_bytes()
    archive = tmp_path / "a.tar.gz"
    archive.write_bytes(data[: len(data) // 2])
    assert download_mednist.main(["--from-archive", str(archive), "--data-dir", str(tmp_path / "data")]) != 0
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("error:")]
    assert len(err) == 1 and "truncated or corrupt" in err[0] and str(archive) in err[0]
    _assert_nothing_kept(tmp_path / "data", tmp_path)


def test_not_an_archive(tmp_path):
    archive = tmp_path / "a.tar.gz"
    archive.write_bytes(b"this is not an archive" * 100)
    with pytest.raises(UserError, match="truncated or corrupt"):
        extract_mednist(archive, tmp_path / "data", progress=False)


def test_archive_without_mednist_layout(tmp_path):
    archive = _write_tar(tmp_path / "a.tar.gz", [_info("Other/Hand/0.jpeg", data=b"x")])
    with pytest.raises(UserError, match="does not hold the MedNIST layout.*MedNIST/<class>/"):
        extract_mednist(archive, tmp_path / "data", progress=False)
    _assert_nothing_kept(tmp_path / "data", tmp_path)


def test_archive_missing_a_class(tmp_path):
    entries = [_info(f"MedNIST/{c}/0.jpeg", data=b"x") for c in CLASS_NAMES if c != "Hand"]
    archive = _write_tar(tmp_path / "a.tar.gz", entries)
    with pytest.raises(UserError, match="no images for class.*Hand"):
        extract_mednist(archive, tmp_path / "data", progress=False)


def test_disk_full_during_extraction(tiny_mednist_archive, tmp_path, monkeypatch):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(tarfile.TarFile, "extractall", full)
    with pytest.raises(UserError, match="disk full"):
        extract_mednist(tiny_mednist_archive, tmp_path / "data", progress=False)
    assert list((tmp_path / "data").iterdir()) == []


def test_unverified_old_tree_is_replaced(tiny_mednist_archive, tmp_path):
    old = tmp_path / "MedNIST" / "Hand"
    old.mkdir(parents=True)
    (old / "leftover.jpeg").write_bytes(b"x")
    extract_mednist(tiny_mednist_archive, tmp_path, progress=False)
    assert not (old / "leftover.jpeg").exists() and is_verified(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["MedNIST"]
