"""Records: what a section measured, with its environment, written as JSON atomically and
loaded with validation. A broken record is refused with its file and field named."""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from common.atomic import write_json
from common.errors import UserError

SCHEMA_VERSION = 1
REQUIRED = {"schema_version": int, "kind": str, "device": str, "created": str, "status": str, "data": dict}
STATUSES = ("ok", "skipped", "error")


@dataclass
class Record:
    kind: str  # the section or benchmark that wrote it, e.g. "augmentation_analysis"
    device: str  # "cuda" or "cpu"
    data: dict[str, Any]
    environment: dict[str, Any] = field(default_factory=dict)
    status: str = "ok"  # ok | skipped (with reason) | error (with reason)
    reason: str | None = None
    notes: list[str] = field(default_factory=list)
    schema_version: int = SCHEMA_VERSION
    created: str = field(default_factory=lambda: _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def save_record(path: str | Path, record: Record) -> Path:
    if record.status not in STATUSES:
        raise ValueError(f"record status {record.status!r} not in {STATUSES}")
    return write_json(path, record.to_dict())


def load_record(path: str | Path, kind: str | None = None) -> Record:
    """Load and validate a record; UserError names the file and the field at fault."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: record not found; run the analysis that writes it first")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not valid JSON ({exc}); the file is truncated or corrupt, "
                        "re-run the analysis") from None
    if not isinstance(raw, dict):
        raise UserError(f"{path}: expected a JSON object at the top level, re-run the analysis")
    for key, typ in REQUIRED.items():
        if key not in raw:
            raise UserError(f"{path}: field '{key}' missing; the record is incomplete, re-run the analysis")
        if not isinstance(raw[key], typ):
            raise UserError(f"{path}: field '{key}' should be {typ.__name__}, got {type(raw[key]).__name__}")
    if raw["schema_version"] > SCHEMA_VERSION:
        raise UserError(f"{path}: schema version {raw['schema_version']} is newer than this suite's "
                        f"({SCHEMA_VERSION}); update the suite")
    if raw["status"] not in STATUSES:
        raise UserError(f"{path}: field 'status' is {raw['status']!r}, expected one of {STATUSES}")
    if kind is not None and raw["kind"] != kind:
        raise UserError(f"{path}: field 'kind' is {raw['kind']!r}, expected {kind!r}")
    known = {f for f in Record.__dataclass_fields__}
    return Record(**{k: v for k, v in raw.items() if k in known})


def plot_or_refuse(path: str | Path, draw):
    """Run ``draw()`` (a plotter reading a record loaded from ``path``); a field the record
    lacks becomes one line naming the file and the field, not a traceback."""
    try:
        return draw()
    except KeyError as err:
        raise UserError(f"{path}: field {err.args[0]!r} missing; the record is incomplete or from another version: "
                        "re-run its section (--sections NAME) or the analysis") from None
    except (TypeError, IndexError) as err:
        raise UserError(f"{path}: a field has an unexpected shape ({type(err).__name__}: {err}); re-run its "
                        "section (--sections NAME) or the analysis") from None
