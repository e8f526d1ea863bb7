"""One writer per folder, clean interruption, and resumption.

- ``FolderLock``: a lock file (pid, host, start time, command) in a results tree or a data
  folder; a second writer is refused with one line naming the owner. A lock whose process is
  gone (same host, dead pid) is taken over with a note.
- ``signals_as_interrupt``: SIGTERM raises ``Terminated`` (a KeyboardInterrupt, like SIGINT),
  so ``finally`` blocks run: staging folders are removed, the report of what finished is
  written, and atomic writes leave no half file.
- ``finished_record``: whether a section's record can be kept by ``--resume``.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import signal
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

from common.errors import Terminated, UserError, interrupt_exit_code, interrupt_name  # noqa: F401

LOCK_NAME = ".lock"


def _raise_terminated(signum, _frame):
    raise Terminated(signum)


@contextlib.contextmanager
def signals_as_interrupt() -> Iterator[None]:
    """Within the block SIGTERM (and SIGHUP) raise ``Terminated``; handlers restored after."""
    saved = {}
    for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if sig is not None:
            try:
                saved[sig] = signal.signal(sig, _raise_terminated)
            except ValueError:  # not the main thread: leave signals alone
                pass
    try:
        yield
    finally:
        for sig, old in saved.items():
            signal.signal(sig, old)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def _owner() -> dict:
    return {"pid": os.getpid(), "host": socket.gethostname(),
            "started_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])[:300]}


class FolderLock:
    """``with FolderLock(folder, "results tree"):`` holds ``folder/.lock`` for this process.
    Re-entrant within one process (a nested lock of the same folder is a no-op)."""

    _held: dict[str, int] = {}

    def __init__(self, folder: str | os.PathLike, what: str):
        self.folder, self.what = Path(folder), what
        self.path = self.folder / LOCK_NAME
        self.note: str | None = None
        self.created = False  # the folder did not exist before: an empty one is removed on release

    def _create(self) -> bool:
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(_owner(), fh)
        return True

    def _read(self) -> dict:
        try:
            return json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):
            return {"pid": None}

    def acquire(self) -> FolderLock:
        key = str(self.path.resolve())
        if key in self._held:
            self._held[key] += 1
            return self
        try:
            self.created = not self.folder.exists()
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise UserError(f"cannot create {self.folder} ({err.strerror}): pass a writable folder") from None
        for _ in range(3):
            if self._create():
                self._held[key] = 1
                return self
            owner = self._read()
            pid, host = owner.get("pid"), owner.get("host")
            same_host = host == socket.gethostname()
            if owner and isinstance(pid, int) and (not same_host or _pid_alive(pid)):
                raise UserError(
                    f"{self.folder} is in use: another run (pid {pid} on {host}, started {owner.get('started_utc')}: "
                    f"{owner.get('command')}) holds {self.path}; wait for it to finish, use another folder, or "
                    f"delete {self.path} if that process is gone", exit_code=4)
            stale = self.path.with_name(f"{LOCK_NAME}.stale-{os.getpid()}")
            with contextlib.suppress(FileNotFoundError):
                os.replace(self.path, stale)
                stale.unlink()
            self.note = (f"note: took over the lock {self.path} of a run that is gone "
                         f"(pid {pid}, started {owner.get('started_utc')})")
            print(self.note, file=sys.stderr)
        raise UserError(f"{self.folder}: could not take the lock {self.path}; try again", exit_code=4)

    def release(self) -> None:
        key = str(self.path.resolve())
        if key not in self._held:
            return
        self._held[key] -= 1
        if self._held[key] == 0:
            del self._held[key]
            if self._read().get("pid") == os.getpid():
                with contextlib.suppress(FileNotFoundError):
                    self.path.unlink()
            if self.created:  # a run refused before it wrote anything leaves no folder behind
                with contextlib.suppress(OSError):
                    self.folder.rmdir()

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


@contextlib.contextmanager
def run_guard(root: str | os.PathLike) -> Iterator[None]:
    """What a script holds while it writes a results tree: SIGTERM as an interrupt and the
    tree's lock."""
    with signals_as_interrupt(), FolderLock(root, "results tree"):
        yield


def interruption(err: BaseException, selected, status: dict) -> dict:
    """The run summary's account of an interrupted run: the signal, the section it hit, what
    finished and what was not run."""
    names = [getattr(s, "name", None) or s[0] for s in selected]
    finished = [k for k in names if k in status]
    not_run = [k for k in names if k not in status]
    return {"signal": interrupt_name(err), "during": not_run[0] if not_run else None,
            "finished": finished, "not_run": not_run}


def resumed_status(path: Path, kind: str, settings: dict, plot, root: Path) -> dict | None:
    """--resume: the run-summary entry of a section whose record ``path`` is finished (its
    figures redrawn by ``plot(record)``), or None (with a line saying why) if it must run."""
    rec, why = finished_record(path, kind, settings)
    if rec is None:
        if why != "no record":
            print(f"[{kind}] measured again: {why}", flush=True)
        return None
    figures = plot(rec)
    print(f"[{kind}] kept from the interrupted run (--resume): {path.name}", flush=True)
    return {"status": "ok", "reason": None, "resumed": True, "figures": [str(p.relative_to(root)) for p in figures],
            "record": str(path.relative_to(root))}


def finished_record(path: Path, kind: str, settings: dict) -> tuple[object | None, str]:
    """(record, "") when ``path`` holds a valid record of ``kind`` with status ok measured
    with the same settings, so ``--resume`` may keep it; else (None, why it is measured again)."""
    from common.records import load_record

    if not path.exists():
        return None, "no record"
    try:
        rec = load_record(path, kind=kind)
    except UserError as err:
        return None, str(err)
    if rec.status != "ok":
        return None, f"its record has status {rec.status}"
    old = (rec.environment or {}).get("config") or {}
    diff = sorted(k for k in set(old) | set(settings) if k != "notes" and old.get(k) != _jsonable(settings.get(k)))
    if diff:
        return None, f"its record was measured with other settings ({', '.join(diff[:5])})"
    return rec, ""


def _jsonable(value):
    from common.atomic import finite_or_none

    return json.loads(json.dumps(finite_or_none(value)))
