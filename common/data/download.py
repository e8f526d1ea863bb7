"""Verified, resumable HTTP download: bytes go to ``<file>.part`` (resumed with a Range
request), which is renamed onto ``<file>`` only once its md5 matches."""

from __future__ import annotations

import errno
import hashlib
import http.client
import os
import re
import urllib.error
import urllib.request
from pathlib import Path

from common.errors import UserError

CHUNK = 1 << 20
OFFLINE_HINT = "without internet use --from-archive PATH (a copy of MedNIST.tar.gz) or --synthetic"


class _Interrupted(Exception):
    """The transfer stopped early; the ``.part`` file keeps what arrived."""

    def __init__(self, done: int, total: int | None, reason: str, progressed: bool):
        super().__init__(reason)
        self.done, self.total, self.reason, self.progressed = done, total, reason, progressed


def md5sum(path: str | os.PathLike, chunk: int = CHUNK) -> str:
    return digests(path, chunk)[0]


def digests(path: str | os.PathLike, chunk: int = CHUNK) -> tuple[str, str]:
    """(md5, sha256) of a file, in one read."""
    md5, sha = hashlib.md5(), hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            md5.update(block)
            sha.update(block)
    return md5.hexdigest(), sha.hexdigest()


def disk_error(err: OSError, where: str | os.PathLike) -> UserError | None:
    """A UserError for a full or unwritable disk, None for other OS errors."""
    if err.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
        return UserError(f"disk full while writing {where}: free some space, or pass --data-dir on another disk")
    if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return UserError(f"cannot write {where} ({err.strerror}): pass --data-dir a writable folder")
    return None


def _range_start(content_range: str | None) -> int | None:
    match = re.match(r"bytes\s+(\d+)-", content_range or "")
    return int(match.group(1)) if match else None


def _fetch(url: str, part: Path, timeout: float, progress: bool) -> None:
    """One request: append to ``part`` (206) or start it over (200)."""
    from tqdm import tqdm

    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": "mednist-analysis-suite"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        resp = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and offset:
            return  # the .part is already whole; the md5 decides
        msg = f"server answered HTTP {err.code} {err.reason} for {url}: check --url; {OFFLINE_HINT}"
        raise UserError(msg) from None
    except ValueError as err:
        raise UserError(f"invalid URL {url!r} ({err}): check --url") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as err:
        reason = getattr(err, "reason", None) or err
        raise UserError(f"cannot reach {url} ({reason}); {OFFLINE_HINT}") from None
    with resp:
        if resp.status == 206 and _range_start(resp.headers.get("Content-Range")) != offset:
            part.unlink(missing_ok=True)
            raise _Interrupted(0, None, "the server sent an unexpected byte range", True)
        if offset and resp.status == 206:
            mode = "ab"
        else:  # no Range asked, or the server ignored it (200): start over
            offset, mode = 0, "wb"
        length = resp.headers.get("Content-Length")
        total = offset + int(length) if length and length.isdigit() else None
        received = 0
        bar = tqdm(
            total=total,
            initial=offset,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            desc=part.name[:-5],
            disable=not progress,
        )
        with bar, open(part, mode) as fh:
            while True:
                try:
                    block = resp.read(CHUNK)
                except (OSError, http.client.HTTPException) as err:
                    raise _Interrupted(offset + received, total, f"{type(err).__name__}: {err}", received > 0) from None
                if not block:
                    break
                try:
                    fh.write(block)
                except OSError as err:
                    raise (disk_error(err, part) or err) from None
                received += len(block)
                bar.update(len(block))
    if total is not None and offset + received < total:
        raise _Interrupted(offset + received, total, "connection closed early", received > 0)


def download_file(
    url: str,
    dest: str | os.PathLike,
    md5: str | None = None,
    timeout: float = 30.0,
    retries: int = 3,
    progress: bool = True,
) -> Path:
    """Download ``url`` to ``dest`` and check its md5. An existing ``dest`` with the right
    md5 is kept; an interrupted transfer is resumed (``retries`` times here, or by the next
    call, from ``dest.part``)."""
    dest = Path(dest)
    if md5 and dest.is_file() and md5sum(dest) == md5:
        return dest
    part = dest.with_name(dest.name + ".part")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise (disk_error(err, dest.parent) or err) from None
    attempt = 0
    while True:
        try:
            _fetch(url, part, timeout, progress)
            break
        except _Interrupted as err:
            attempt += 1
            if attempt > retries or not err.progressed:
                total = f"{err.total:,}" if err.total is not None else "?"
                raise UserError(
                    f"download of {url} interrupted after {err.done:,} of {total} bytes ({err.reason}): "
                    f"run the same command again to resume from {part}; {OFFLINE_HINT}"
                ) from None
    actual = md5sum(part)
    if md5 and actual != md5:
        part.unlink()
        raise UserError(
            f"checksum mismatch for {dest} downloaded from {url}: expected md5 {md5}, got {actual}; "
            "the file was removed: run again, or pass the right --md5 for this --url"
        )
    os.replace(part, dest)
    return dest
