"""The README's "Measured results" block is what `winning_solution.py --headline` prints from
the committed record (run AF), and the run-T and run-AF tables in docs/PERFORMANCE.md are what
--from-record prints."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RECORD = REPO / "docs" / "records" / "winning_solution_run_AF.json"
RUN_T = REPO / "docs" / "records" / "winning_solution_run_T.json"


def _printed(*argv: str) -> str:
    from benchmarks.winning_solution import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        assert main(list(argv)) == 0
    return out.getvalue().strip()


def test_readme_headline_block_is_printed_from_the_committed_record():
    readme = (REPO / "README.md").read_text()
    block = re.search(r"<!-- headline:start -->\n(.*?)\n<!-- headline:end -->", readme, re.S)
    assert block, "README.md lost its headline markers"
    assert block.group(1).strip() == _printed("--headline", str(RECORD))
    assert str(RECORD.relative_to(REPO)) in readme  # the README names the record it is printed from


def test_performance_tables_of_runs_t_and_af_are_printed_from_their_records():
    text = (REPO / "docs" / "PERFORMANCE.md").read_text()
    for record in (RUN_T, RECORD):
        assert _printed("--from-record", str(record)) in text
    # every speed claim sits beside its time to target: the headline's winner line carries both
    head = _printed("--headline", str(RECORD))
    winner = next(line for line in head.splitlines() if "winner" in line)
    assert "images/s" in winner and "s cold" in winner and "s warm" in winner
