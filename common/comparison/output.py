"""Writing comparison_results/ all or nothing: records, figures and the report are first written
into a staging folder beside it; only when everything succeeded are the files moved (each an
atomic rename) into place. A failure leaves the previous comparison, if any, as it was."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from common.comparison import COMPARISON_DIR, FIGURES, RECORDS, REPORT
from common.errors import UserError
from common.records import Record, load_record, save_record


def record_paths(root: Path, kind: str) -> tuple[Path, Path]:
    """(canonical copy in metrics/, copy beside the figures drawn from it)."""
    folder, name = RECORDS[kind]
    return root / "metrics" / name, root / folder / name


def load_comparison_records(root: Path) -> dict[str, Record]:
    """The comparison records of an earlier run (for --replot); UserError names a missing or broken one."""
    metrics = root / "metrics"
    if not metrics.is_dir():
        raise UserError(f"{metrics}: no comparison records to replot; run enhanced_gpu_cpu_comparison.py without "
                        "--replot first")
    return {kind: load_record(record_paths(root, kind)[0], kind=kind) for kind in RECORDS}


def _commit(staging: Path, final: Path) -> list[Path]:
    moved = []
    for src in sorted(p for p in staging.rglob("*") if p.is_file()):
        dst = final / src.relative_to(staging)
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.replace(src, dst)
        moved.append(dst)
    return moved


def write_comparison(results_dir: Path, records: dict[str, Record],
                     render: Callable[[dict[str, Record], Path], None]) -> list[Path]:
    """Save every record (metrics/ and beside its figures), then ``render(records, root)`` the figures
    and the report, all into a staging folder; then move everything into <results_dir>/comparison_results."""
    results_dir = Path(results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    final = results_dir / COMPARISON_DIR
    staging = Path(tempfile.mkdtemp(prefix=f".{COMPARISON_DIR}.staging-", dir=results_dir))
    try:
        for kind, rec in records.items():
            for path in record_paths(staging, kind):
                save_record(path, rec)
        render(records, staging)
        missing = [f for f in list(FIGURES) + [REPORT] if not (staging / f).exists()]
        if missing:
            raise RuntimeError(f"comparison incomplete, not written: {', '.join(missing)} missing")
        return _commit(staging, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
