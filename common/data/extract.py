"""Safe extraction of a MedNIST archive (.tar.gz, .tar, .zip) and installation of a staged
tree: every member is checked before anything is written, the tree is staged in a
temporary folder inside DIR and renamed to DIR/MedNIST only once verified."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath

from common.atomic import current_umask
from common.data.download import digests, disk_error
from common.data.mednist import CLASS_NAMES, FOLDER, build_manifest, layout_problem, write_manifest
from common.errors import UserError

_ARCHIVE_ERRORS = (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, RuntimeError)


def _refuse(member: str, why: str) -> UserError:
    return UserError(f"refused archive member {member!r}: {why}; nothing of this archive was kept")


def _corrupt(archive: Path, err: BaseException) -> UserError:
    return UserError(
        f"archive {archive} is truncated or corrupt ({type(err).__name__}: {err}); "
        "get a complete copy (for a download: delete it and run again)"
    )


# --- member checks --------------------------------------------------------------------


def member_parts(name: str) -> tuple[str, ...]:
    """The components of a member path; UserError if it is absolute or climbs with '..'."""
    if not name or name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        raise _refuse(name, "absolute path")
    if "\\" in name:
        raise _refuse(name, "backslash in the path")
    parts = PurePosixPath(name).parts
    if ".." in parts:
        raise _refuse(name, "'..' component: it would land outside the target")
    return parts


def _through_link(parts: Iterable[str], links: set[str]) -> str | None:
    """The first proper prefix of ``parts`` that is a symlink member, if any."""
    parts = tuple(parts)
    for i in range(1, len(parts)):
        prefix = "/".join(parts[:i])
        if prefix in links:
            return prefix
    return None


def _check_symlink(name: str, parts: tuple[str, ...], target: str, links: set[str]) -> None:
    if target.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", target):
        raise _refuse(name, f"symlink to absolute path {target!r}")
    stack: list[str] = []
    seq = (*parts[:-1], *PurePosixPath(target).parts)
    for i, part in enumerate(seq):
        if part == "..":
            if not stack:
                raise _refuse(name, f"symlink to {target!r} points outside the target")
            stack.pop()
            continue
        stack.append(part)
        if i < len(seq) - 1 and "/".join(stack) in links:
            raise _refuse(name, f"symlink to {target!r} passes through another symlink")


def check_tar_members(members: list[tarfile.TarInfo]) -> None:
    """UserError naming the first member that would land outside the target, is a device
    file, or reaches outside through a link."""
    links = {"/".join(PurePosixPath(m.name).parts) for m in members if m.issym()}
    for m in members:
        parts = member_parts(m.name)
        via = _through_link(parts, links)
        if via:
            raise _refuse(m.name, f"its path passes through the symlink {via!r}")
        if m.ischr() or m.isblk() or m.isfifo():
            raise _refuse(m.name, "device file or fifo")
        if m.issym():
            _check_symlink(m.name, parts, m.linkname, links)
        elif m.islnk():
            try:
                target = member_parts(m.linkname)
            except UserError:
                raise _refuse(m.name, f"hard link to {m.linkname!r} points outside the target") from None
            if _through_link((*target, ""), links):
                raise _refuse(m.name, f"hard link to {m.linkname!r} passes through a symlink")
        elif not (m.isfile() or m.isdir()):
            raise _refuse(m.name, "unsupported member type")


def check_zip_members(infos: list[zipfile.ZipInfo]) -> None:
    for info in infos:
        member_parts(info.filename)
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise _refuse(info.filename, "symlink (not supported in zip archives)")
        if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode):
            raise _refuse(info.filename, "device file or fifo")


# --- extraction -------------------------------------------------------------------------


def _bar(items: list, progress: bool, desc: str):
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit="file", disable=not progress)


_STREAMS = {b"\x1f\x8b": "gzip", b"BZh": "bz2", b"\xfd7zXZ\x00": "lzma"}


def check_compression(archive: str | os.PathLike) -> str:
    """Read a compressed archive to its end so that its checksums are verified (gzip: CRC-32
    and length of every member; bz2: block CRCs; xz: its check; zip: every member's CRC-32);
    tarfile alone stops at the end-of-archive blocks and never reads the gzip trailer. The
    format name; UserError for a truncated or corrupt archive."""
    import bz2
    import gzip
    import lzma

    archive = Path(archive)
    with open(archive, "rb") as fh:
        head = fh.read(6)
    kind = next((k for magic, k in _STREAMS.items() if head.startswith(magic)), None)
    try:
        if kind:
            opener = {"gzip": gzip.open, "bz2": bz2.open, "lzma": lzma.open}[kind]
            with opener(archive, "rb") as stream:
                while stream.read(CHUNK_UNPACKED):
                    pass
            return kind
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                bad = zf.testzip()
            if bad is not None:
                raise zipfile.BadZipFile(f"CRC-32 mismatch in member {bad!r}")
            return "zip"
    except (*_ARCHIVE_ERRORS, OSError, lzma.LZMAError) as err:
        raise _corrupt(archive, err) from None
    return "tar"


CHUNK_UNPACKED = 4 << 20


def safe_extract(archive: str | os.PathLike, dest: str | os.PathLike, progress: bool = False) -> int:
    """Check every member of ``archive``, then extract it into ``dest``; the member count.
    UserError for a refused member or a truncated/corrupt archive."""
    archive, dest = Path(archive), Path(dest)
    if not archive.is_file():
        raise UserError(f"archive {archive} not found")
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                infos = zf.infolist()
                check_zip_members(infos)
                for info in _bar(infos, progress, "extract"):
                    zf.extract(info, dest)
                return len(infos)
        with tarfile.open(archive, "r:*") as tf:
            members = tf.getmembers()
            check_tar_members(members)
            extra = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            tf.extractall(dest, members=_bar(members, progress, "extract"), **extra)
            return len(members)
    except _ARCHIVE_ERRORS as err:
        raise _corrupt(archive, err) from None
    except OSError as err:
        if disk_error(err, dest) is not None:
            raise
        raise _corrupt(archive, err) from None


# --- staging and installation -----------------------------------------------------------


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_debris(data_dir: str | os.PathLike) -> list[Path]:
    """Remove staging and old-tree folders left in ``data_dir`` by runs that were killed
    (their pid, in the folder name, is no longer running); the paths removed."""
    removed = []
    for path in Path(data_dir).glob(f".{FOLDER}-*-*"):
        match = re.match(rf"\.{FOLDER}-(staging|old)-(\d+)-", path.name)
        if path.is_dir() and match and not _pid_alive(int(match.group(2))):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


@contextlib.contextmanager
def staging_dir(data_dir: str | os.PathLike) -> Iterator[Path]:
    """A temporary folder inside ``data_dir`` named after this process, always removed on
    exit (SIGTERM too, where the script turns it into an exception: common.runlock); debris
    of killed runs is removed first. A full or unwritable disk becomes a UserError."""
    data_dir = Path(data_dir)
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        for path in clean_debris(data_dir):
            print(f"note: removed {path}, left by an interrupted run")
        tmp = Path(tempfile.mkdtemp(prefix=f".{FOLDER}-staging-{os.getpid()}-", dir=data_dir))
    except OSError as err:
        raise (disk_error(err, data_dir) or err) from None
    try:
        yield tmp
    except OSError as err:
        raise (disk_error(err, data_dir) or err) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def install_tree(staged: str | os.PathLike, data_dir: str | os.PathLike) -> Path:
    """Rename a verified staged tree onto DIR/MedNIST, moving any previous tree away first."""
    data_dir = Path(data_dir)
    target = data_dir / FOLDER
    old = None
    if target.is_symlink() or target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{FOLDER}-old-{os.getpid()}-", dir=data_dir)) / FOLDER
        os.rename(target, old)
    os.chmod(staged, 0o777 & ~current_umask())  # mkdtemp made it 0700
    os.rename(staged, target)
    if old is not None:
        if old.is_symlink():
            old.unlink()
        shutil.rmtree(old.parent, ignore_errors=True)
    return target


def extract_mednist(
    archive: str | os.PathLike,
    data_dir: str | os.PathLike,
    *,
    source: str = "archive",
    url: str | None = None,
    expected_md5: str | None = None,
    official_md5: str | None = None,
    progress: bool = True,
) -> Path:
    """Check a MedNIST archive (md5 when one is expected, its compression checksums read to
    the end, every member), extract it into a staging folder, check its layout, then rename
    it onto DIR/MedNIST with its manifest (md5, sha256, and whether it is the official
    archive). Nothing replaces the old tree before all of that passed. The root."""
    archive = Path(archive)
    if not archive.is_file():
        raise UserError(f"archive {archive} not found: pass the path of a MedNIST.tar.gz (or .zip) to --from-archive")
    md5, sha256 = digests(archive)
    if expected_md5 and md5 != expected_md5.lower():
        raise UserError(
            f"checksum mismatch for {archive}: expected md5 {expected_md5}, got {md5}; "
            "use the right archive, or pass its md5 with --md5"
        )
    check_compression(archive)
    with staging_dir(data_dir) as tmp:
        safe_extract(archive, tmp, progress=progress)
        staged = tmp / FOLDER
        problem = layout_problem(staged)
        if problem:
            raise UserError(
                f"archive {archive} does not hold the MedNIST layout ({problem}): expected "
                f"{FOLDER}/<class>/*.jpeg for {', '.join(CLASS_NAMES)}; nothing was kept"
            )
        official = bool(official_md5) and md5 == official_md5.lower()
        manifest = build_manifest(staged, source, url=url, archive_path=archive, archive_md5=md5,
                                  archive_sha256=sha256, verified_official=official, synthetic=False)
        write_manifest(staged, manifest)
        return install_tree(staged, data_dir)
