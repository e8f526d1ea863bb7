"""Fault injection, archives and data folders: corrupt and hostile archives, less-verified data
replacing verified data, absurd counts, signals during extraction, concurrent writers.
Every refusal is checked for its message, its exit code, and that the verified tree already
in place is intact byte for byte."""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

import config
import download_mednist
from common.data.download import digests

REPO = Path(__file__).resolve().parents[2]


def snapshot(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder`` (relative path -> digest)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def one_error(err: str) -> bool:
    """Exactly one 'error:' line and no traceback (progress bars may share stderr)."""
    return sum(line.startswith("error: ") for line in err.splitlines()) == 1 and "Traceback" not in err


def run_cli(argv, capsys) -> tuple[int, str, str]:
    rc = download_mednist.main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture
def verified(tiny_mednist_archive, tmp_path, monkeypatch, capsys):
    """A data folder holding the tiny archive extracted as if it were the official one."""
    monkeypatch.setattr(config, "MEDNIST_MD5", digests(tiny_mednist_archive)[0])
    data = tmp_path / "data"
    rc, out, _ = run_cli(["--data-dir", str(data), "--from-archive", str(tiny_mednist_archive)], capsys)
    assert rc == 0 and "official archive, md5 verified" in out
    return data


def _tar(path: Path, members: dict[str, bytes], gz: bool = True) -> Path:
    with tarfile.open(path, "w:gz" if gz else "w") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1:]


def test_manifest_records_sha256_and_official_flag(verified, tiny_mednist_archive):
    manifest = json.loads((verified / "MedNIST" / "manifest.json").read_text())
    md5, sha = digests(tiny_mednist_archive)
    assert manifest["archive_sha256"] == sha and manifest["archive_md5"] == md5
    assert manifest["verified_official"] is True


@pytest.mark.parametrize("where", ["crc", "length", "middle"])
def test_flipped_byte_is_refused_and_verified_data_kept(where, verified, tiny_mednist_archive, tmp_path, capsys):
    before = snapshot(verified)
    data = tiny_mednist_archive.read_bytes()
    at = {"crc": len(data) - 8, "length": len(data) - 2, "middle": len(data) // 2}[where]
    bad = tmp_path / "flipped.tar.gz"
    bad.write_bytes(_flip(data, at))
    rc, _, err = run_cli(["--data-dir", str(verified), "--from-archive", str(bad), "--force"], capsys)
    assert rc == 2 and one_error(err) and "truncated or corrupt" in err and str(bad) in err
    if where == "crc":
        assert "CRC check failed" in err
    assert snapshot(verified) == before
    assert not list(verified.glob(".MedNIST-*"))


@pytest.mark.parametrize("keep", [0.1, 0.6, 0.98])
def test_truncated_archive_refused_and_verified_data_kept(keep, verified, tiny_mednist_archive, tmp_path, capsys):
    before = snapshot(verified)
    data = tiny_mednist_archive.read_bytes()
    bad = tmp_path / "cut.tar.gz"
    bad.write_bytes(data[: int(len(data) * keep)])
    rc, _, err = run_cli(["--data-dir", str(verified), "--from-archive", str(bad), "--force"], capsys)
    assert rc == 2 and "truncated or corrupt" in err
    assert snapshot(verified) == before


@pytest.mark.parametrize("members, message", [
    ({"MedNIST/CXR/a.jpeg": b"x", "../evil.txt": b"owned"}, "'..' component"),
    ({"/etc/evil": b"owned"}, "absolute path"),
    ({"Other/CXR/a.jpeg": b"x"}, "does not hold the MedNIST layout"),
    ({"MedNIST/CXR/a.jpeg": b"x"}, "no images for class(es) AbdomenCT"),
])
def test_hostile_or_wrong_archives_refused(members, message, verified, tmp_path, capsys):
    before = snapshot(verified)
    bad = _tar(tmp_path / "bad.tar.gz", members)
    rc, _, err = run_cli(["--data-dir", str(verified), "--from-archive", str(bad), "--force"], capsys)
    assert rc == 2 and message in err and one_error(err)
    assert snapshot(verified) == before
    assert not (tmp_path / "evil.txt").exists()


def test_zip_with_a_bad_crc_is_refused(verified, tmp_path, capsys):
    import zipfile

    path = tmp_path / "bad.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("MedNIST/CXR/a.jpeg", b"A" * 200)
    data = path.read_bytes()
    path.write_bytes(data.replace(b"A" * 200, b"A" * 199 + b"B"))
    rc, _, err = run_cli(["--data-dir", str(verified), "--from-archive", str(path), "--force"], capsys)
    assert rc == 2 and "truncated or corrupt" in err and "CRC" in err


def test_synthetic_never_replaces_verified_data_without_force(verified, capsys):
    before = snapshot(verified)
    rc, _, err = run_cli(["--data-dir", str(verified), "--synthetic", "2"], capsys)
    assert rc == 2 and "holds the official archive" in err and "--force" in err
    assert snapshot(verified) == before
    rc, out, _ = run_cli(["--data-dir", str(verified), "--synthetic", "2", "--force"], capsys)
    assert rc == 0 and "[SYNTHETIC]" in out


def test_a_different_archive_never_replaces_official_data_without_force(verified, tmp_path, capsys):
    from common.data.synthetic import generate_synthetic

    root = generate_synthetic(tmp_path / "other", 2, seed=5, progress=False)
    other = tmp_path / "other.tar.gz"
    with tarfile.open(other, "w:gz") as tf:
        tf.add(root, arcname="MedNIST")
    before = snapshot(verified)
    rc, _, err = run_cli(["--data-dir", str(verified), "--from-archive", str(other)], capsys)
    assert rc == 2 and "an unverified archive would lose it" in err
    assert snapshot(verified) == before


@pytest.mark.parametrize("count", ["0", "10001", "1000000000", "-3"])
def test_synthetic_count_limits(count, tmp_path, capsys):
    rc, _, err = run_cli(["--data-dir", str(tmp_path / "d"), "--synthetic", count], capsys)
    assert rc == 2 and "out of range: give 1 to 10,000" in err
    assert not (tmp_path / "d" / "MedNIST").exists()


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_debris_of_a_killed_run_is_removed_by_the_next(tmp_path, tiny_mednist_archive, capsys):
    data = tmp_path / "data"
    stale = data / f".MedNIST-staging-{_dead_pid()}-abcd" / "MedNIST" / "CXR"
    stale.mkdir(parents=True)
    (stale / "x.jpeg").write_bytes(b"half")
    live = data / f".MedNIST-staging-{os.getpid()}-live"  # a running process's staging is left alone
    live.mkdir()
    rc, out, _ = run_cli(["--data-dir", str(data), "--from-archive", str(tiny_mednist_archive)], capsys)
    assert rc == 0 and "left by an interrupted run" in out
    assert not stale.parent.parent.exists() and live.exists()


_SLOW_EXTRACT = """
import sys, time
sys.path.insert(0, {repo!r})
import common.data.extract as ex
real = ex.safe_extract
def slow(*a, **k):
    n = real(*a, **k)
    print("STAGED", flush=True)
    time.sleep(60)
    return n
ex.safe_extract = slow
import download_mednist
sys.exit(download_mednist.main(sys.argv[1:]))
"""


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_during_extraction_leaves_no_staging(sig, code, verified, tiny_mednist_archive, tmp_path):
    before = snapshot(verified)
    script = tmp_path / "slow.py"
    script.write_text(_SLOW_EXTRACT.format(repo=str(REPO)))
    proc = subprocess.Popen([sys.executable, str(script), "--data-dir", str(verified), "--from-archive",
                             str(tiny_mednist_archive), "--force"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=REPO)
    assert proc.stdout.readline().strip() == "STAGED"
    assert list(verified.glob(".MedNIST-staging-*"))
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == code and f"interrupted ({sig.name})" in err and "Traceback" not in err
    assert not list(verified.glob(".MedNIST-*")) and not (verified / ".lock").exists()
    assert snapshot(verified) == before


_HOLD = """
import sys, time
sys.path.insert(0, {repo!r})
from common.runlock import FolderLock
with FolderLock(sys.argv[1], "data folder"):
    print("HELD", flush=True)
    time.sleep(60)
"""


def test_second_writer_of_a_data_folder_is_refused(verified, tmp_path, tiny_mednist_archive, capsys):
    before = snapshot(verified)
    script = tmp_path / "hold.py"
    script.write_text(_HOLD.format(repo=str(REPO)))
    holder = subprocess.Popen([sys.executable, str(script), str(verified)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "HELD"
        rc, _, err = run_cli(["--data-dir", str(verified), "--synthetic", "2", "--force"], capsys)
        assert rc == 4 and f"pid {holder.pid}" in err and "is in use" in err and one_error(err)
        assert {k: v for k, v in snapshot(verified).items() if k != ".lock"} == before
    finally:
        holder.kill()  # SIGKILL: its lock stays behind, stale
        holder.wait()
    rc, out, err = run_cli(["--data-dir", str(verified), "--synthetic", "2", "--force"], capsys)
    assert rc == 0 and "took over the lock" in err and f"pid {holder.pid}" in err
    assert not (verified / ".lock").exists()


def test_download_locks_are_exclusive_within_a_burst(tmp_path, tiny_mednist_archive):
    """Three extractions started at once into one folder: one at a time succeeds, the others
    are refused (exit 4) or find the data verified; never two writers at once."""
    data = tmp_path / "data"
    cmd = [sys.executable, str(REPO / "download_mednist.py"), "--data-dir", str(data), "--from-archive",
           str(tiny_mednist_archive)]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
             for _ in range(3)]
    results = [(p.wait(timeout=60), p.stdout.read(), p.stderr.read()) for p in procs]
    for rc, out, err in results:
        assert (rc == 0 and "MedNIST" in out) or (rc == 4 and "is in use" in err), (rc, out, err)
    assert any(rc == 0 for rc, *_ in results)
    assert not list(data.glob(".MedNIST-*")) and not (data / ".lock").exists()
    time.sleep(0)
