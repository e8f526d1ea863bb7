"""common.data.download and the download_mednist.py CLI, against a local HTTP server."""

from __future__ import annotations

import errno
import hashlib
import json
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import config
import download_mednist
from common.data import download
from common.data.download import download_file, md5sum
from common.data.mednist import CLASS_NAMES
from common.errors import UserError


class _Handler(BaseHTTPRequestHandler):
    """Serves ``server.data`` at /MedNIST.tar.gz with Range support; may cut the first
    transfer after ``server.cut_after`` bytes or ignore Range requests."""

    def log_message(self, *args):  # keep test output clean
        pass

    def do_GET(self):
        srv = self.server
        srv.requests.append(dict(self.headers))
        if self.path != "/MedNIST.tar.gz":
            self.send_error(404)
            return
        data, start = srv.data, 0
        asked = self.headers.get("Range")
        if asked and not srv.ignore_range:
            start = int(re.fullmatch(r"bytes=(\d+)-", asked).group(1))
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        if srv.cut_after is not None and len(srv.requests) == 1:
            body = body[: srv.cut_after]  # then the connection closes (HTTP/1.0)
        self.wfile.write(body)


@pytest.fixture
def server(tiny_mednist_archive):
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.data = tiny_mednist_archive.read_bytes()
    srv.requests, srv.cut_after, srv.ignore_range = [], None, False
    srv.url = f"http://127.0.0.1:{srv.server_address[1]}/MedNIST.tar.gz"
    srv.md5 = hashlib.md5(srv.data).hexdigest()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _error_line(capsys) -> str:
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, lines
    return lines[0]


# --- download_file ------------------------------------------------------------------


def test_download_verifies_md5_and_leaves_no_part(server, tmp_path):
    dest = download_file(server.url, tmp_path / "a.tar.gz", md5=server.md5, progress=False)
    assert md5sum(dest) == server.md5
    assert not (tmp_path / "a.tar.gz.part").exists()
    assert "Range" not in server.requests[0]


def test_interrupted_download_is_resumed_by_next_run(server, tmp_path):
    server.cut_after = 10_000
    dest = tmp_path / "a.tar.gz"
    with pytest.raises(UserError, match="interrupted after 10,000 of .*run the same command again to resume"):
        download_file(server.url, dest, md5=server.md5, retries=0, progress=False)
    part = tmp_path / "a.tar.gz.part"
    assert part.stat().st_size == 10_000 and not dest.exists()

    download_file(server.url, dest, md5=server.md5, retries=0, progress=False)
    assert len(server.requests) == 2
    assert server.requests[1]["Range"] == "bytes=10000-"
    assert md5sum(dest) == server.md5 and not part.exists()


def test_interrupted_download_is_resumed_within_one_run(server, tmp_path):
    server.cut_after = 5_000
    dest = download_file(server.url, tmp_path / "a.tar.gz", md5=server.md5, progress=False)
    assert [r.get("Range") for r in server.requests] == [None, "bytes=5000-"]
    assert md5sum(dest) == server.md5


def test_server_ignoring_range_restarts_cleanly(server, tmp_path):
    server.ignore_range = True
    (tmp_path / "a.tar.gz.part").write_bytes(b"x" * 7_000)  # a stale partial download
    dest = download_file(server.url, tmp_path / "a.tar.gz", md5=server.md5, progress=False)
    assert server.requests[0]["Range"] == "bytes=7000-"
    assert md5sum(dest) == server.md5


def test_complete_part_answered_416_is_checked_and_kept(server, tmp_path):
    (tmp_path / "a.tar.gz.part").write_bytes(server.data)
    dest = download_file(server.url, tmp_path / "a.tar.gz", md5=server.md5, progress=False)
    assert md5sum(dest) == server.md5


def test_existing_verified_file_is_not_downloaded_again(server, tmp_path):
    (tmp_path / "a.tar.gz").write_bytes(server.data)
    download_file(server.url, tmp_path / "a.tar.gz", md5=server.md5, progress=False)
    assert server.requests == []


def test_checksum_mismatch_names_file_and_both_md5s(server, tmp_path):
    wrong = "0" * 32
    with pytest.raises(UserError) as err:
        download_file(server.url, tmp_path / "a.tar.gz", md5=wrong, progress=False)
    msg = str(err.value)
    assert "checksum mismatch" in msg and "a.tar.gz" in msg and wrong in msg and server.md5 in msg
    assert list(tmp_path.iterdir()) == []  # neither the file nor its .part is kept


def test_unreachable_url_suggests_offline_options(tmp_path):
    with pytest.raises(UserError, match="cannot reach.*--from-archive.*--synthetic"):
        download_file(f"http://127.0.0.1:{_closed_port()}/MedNIST.tar.gz", tmp_path / "a", progress=False)


def test_http_error_is_a_user_error(server, tmp_path):
    with pytest.raises(UserError, match="HTTP 404"):
        download_file(server.url.replace("MedNIST", "nothing"), tmp_path / "a", progress=False)


def test_disk_full_while_downloading(server, tmp_path, monkeypatch):
    class Full:
        def __init__(self, *a, **k):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *a):
            return False

        def write(self, block):
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(download, "open", Full, raising=False)
    with pytest.raises(UserError, match="disk full while writing .*--data-dir"):
        download_file(server.url, tmp_path / "a.tar.gz", md5=server.md5, progress=False)


# --- the CLI --------------------------------------------------------------------------


def test_cli_downloads_extracts_then_returns_at_once(server, tmp_path, capsys):
    data_dir = tmp_path / "data"
    argv = ["--url", server.url, "--md5", server.md5, "--data-dir", str(data_dir)]
    assert download_mednist.main(argv) == 0
    manifest = json.loads((data_dir / "MedNIST" / "manifest.json").read_text())
    assert manifest["source"] == "url" and manifest["url"] == server.url
    assert manifest["archive_md5"] == server.md5 and manifest["total"] == 18 and manifest["synthetic"] is False
    assert (data_dir / "MedNIST.tar.gz").is_file()
    n_requests = len(server.requests)

    assert download_mednist.main(argv) == 0
    assert len(server.requests) == n_requests
    assert "already verified" in capsys.readouterr().out


def test_cli_unreachable_url_exits_nonzero_with_one_line(tmp_path, capsys):
    data_dir = tmp_path / "data"
    url = f"http://127.0.0.1:{_closed_port()}/MedNIST.tar.gz"
    assert download_mednist.main(["--url", url, "--data-dir", str(data_dir)]) != 0
    line = _error_line(capsys)
    assert "cannot reach" in line and "--from-archive" in line
    assert not (data_dir / "MedNIST").exists()


def test_cli_from_real_sample_then_noop_under_a_second(mednist_sample_archive, tmp_path, capsys):
    data_dir = tmp_path / "data"
    argv = ["--from-archive", str(mednist_sample_archive), "--data-dir", str(data_dir)]
    assert download_mednist.main(argv) == 0
    manifest = json.loads((data_dir / "MedNIST" / "manifest.json").read_text())
    assert manifest["total"] == 12_000
    assert manifest["class_counts"] == {c: 2_000 for c in CLASS_NAMES}
    assert manifest["source"] == "archive" and manifest["archive_md5"] == md5sum(mednist_sample_archive)
    assert manifest["image_size"] == [64, 64] and manifest["image_mode"] == "L"
    assert manifest["manifest_version"] == 1 and manifest["synthetic"] is False

    start = time.perf_counter()
    assert download_mednist.main(argv) == 0
    assert time.perf_counter() - start < 1.0
    assert "already verified" in capsys.readouterr().out
    assert json.loads((data_dir / "MedNIST" / "manifest.json").read_text()) == manifest


def test_cli_from_archive_md5_mismatch(tiny_mednist_archive, tmp_path, capsys):
    wrong = "f" * 32
    argv = ["--from-archive", str(tiny_mednist_archive), "--md5", wrong, "--data-dir", str(tmp_path)]
    assert download_mednist.main(argv) != 0
    line = _error_line(capsys)
    assert "checksum mismatch" in line and str(tiny_mednist_archive) in line
    assert wrong in line and md5sum(tiny_mednist_archive) in line
    assert not (tmp_path / "MedNIST").exists()


def test_cli_from_archive_missing_file(tmp_path, capsys):
    assert download_mednist.main(["--from-archive", str(tmp_path / "nope.tar.gz"), "--data-dir", str(tmp_path)]) != 0
    assert "nope.tar.gz not found" in _error_line(capsys)


def test_cli_force_redoes_verified_data(tiny_mednist_archive, tmp_path):
    argv = ["--from-archive", str(tiny_mednist_archive), "--data-dir", str(tmp_path)]
    assert download_mednist.main(argv) == 0
    first = json.loads((tmp_path / "MedNIST" / "manifest.json").read_text())
    (tmp_path / "MedNIST" / "stray.txt").write_text("x")
    assert download_mednist.main([*argv, "--force"]) == 0
    assert not (tmp_path / "MedNIST" / "stray.txt").exists()
    assert json.loads((tmp_path / "MedNIST" / "manifest.json").read_text())["total"] == first["total"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["MedNIST"]  # no staging or old tree left


def test_cli_rejects_bad_md5_and_conflicting_sources(tmp_path, capsys):
    assert download_mednist.main(["--md5", "xyz", "--data-dir", str(tmp_path)]) == 2
    assert "not an md5" in _error_line(capsys)
    with pytest.raises(SystemExit) as exc:
        download_mednist.main(["--synthetic", "5", "--from-archive", "a.tar.gz"])
    assert exc.value.code == 2


def test_cli_help_explains_flags_with_config_defaults(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")
    with pytest.raises(SystemExit) as exc:
        download_mednist.main(["--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--data-dir", "--url", "--md5", "--from-archive", "--synthetic", "--force", "--seed", "--timeout"):
        assert flag in text
    for value in (config.DATA_DIR, config.MEDNIST_URL, config.MEDNIST_MD5, config.SYNTHETIC_PER_CLASS, config.SEED):
        assert f"= {value!r}" in text or f"= {value}" in text


def test_archive_name_from_url():
    assert download_mednist._archive_name(config.MEDNIST_URL) == "MedNIST.tar.gz"
    assert download_mednist._archive_name("http://h/get?x=1") == "MedNIST.tar.gz"
