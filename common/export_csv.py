"""CSV exports for spreadsheet users: the samplers' time series (one row per sample, seconds from
the first sample, nested fields spread over columns) and every table of a result tree (the
report's tables and each list or mapping of rows inside the records). Missing values are empty
cells; the JSON records stay the reference."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from common.atomic import write_text

SCALARS = (int, float, str, bool)


def flatten(row: dict[str, Any], prefix: str = "", depth: int = 2) -> dict[str, Any]:
    """Scalars of ``row`` under dotted names, nested dicts down to ``depth``; short lists of
    numbers (per core, a CI) as name[i]; anything else left out."""
    out: dict[str, Any] = {}
    for k, v in row.items():
        name = f"{prefix}{k}"
        if v is None or isinstance(v, SCALARS):
            out[name] = v
        elif isinstance(v, dict) and depth > 0:
            out.update(flatten(v, f"{name}.", depth - 1))
        elif isinstance(v, (list, tuple)) and len(v) <= 256 and all(isinstance(x, (int, float)) for x in v):
            out.update({f"{name}[{i}]": x for i, x in enumerate(v)})
    return out


def write_rows(path: Path, rows: list[dict[str, Any]]) -> Path:
    columns: dict[str, None] = {}
    for r in rows:
        for k in r:
            columns.setdefault(k, None)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(columns), restval="", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if v is None else v) for k, v in r.items()})
    return write_text(path, buf.getvalue())


def sampler_rows(sampler: dict | None) -> list[dict[str, Any]]:
    samples = (sampler or {}).get("samples") or []
    if not samples:
        return []
    t0 = samples[0]["t"]
    rows = []
    for s in samples:
        row = {"t_s": s["t"] - t0, "t_perf_counter_s": s["t"]}
        row.update(flatten({k: v for k, v in s.items() if k != "t"}))
        rows.append(row)
    return rows


def _is_table(value: Any) -> bool:
    if isinstance(value, list):
        return len(value) > 0 and all(isinstance(x, dict) for x in value)
    if isinstance(value, dict):
        return len(value) > 1 and all(isinstance(x, dict) for x in value.values()) and \
            sum(isinstance(y, SCALARS) or isinstance(y, dict) for x in value.values() for y in x.values()) > 0
    return False


def record_tables(data: dict[str, Any], path: str = "", out: dict[str, list[dict]] | None = None,
                  max_depth: int = 3) -> dict[str, list[dict]]:
    """{dotted path: rows} for every list of row dicts, and every mapping of row dicts (its keys
    become the ``key`` column), in a record's data. Sampler samples are left to ``sampler_rows``."""
    out = {} if out is None else out
    for k, v in data.items():
        name = f"{path}.{k}" if path else str(k)
        if k == "samples":
            continue
        if _is_table(v):
            rows = v if isinstance(v, list) else [{"key": key, **row} for key, row in v.items()]
            flat = [flatten(r) for r in rows]
            if any(len(r) > 1 for r in flat):
                out[name] = flat
        if isinstance(v, dict) and max_depth > 0:
            record_tables(v, name, out, max_depth - 1)
    return out


def export_record(path_stem: Path, data: dict[str, Any]) -> list[Path]:
    """One CSV per table in ``data``: <stem>__<dotted path>.csv."""
    written = []
    for name, rows in record_tables(data).items():
        safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in name)
        written.append(write_rows(path_stem.with_name(f"{path_stem.name}__{safe}.csv"), rows))
    return written
