"""The README's "Measured results" block is what `winning_solution.py --headline` prints from
the committed records (run AH, with run AI's throughput leader), and the tables of runs T, AF,
AG, AH and AI in docs/PERFORMANCE.md are what --from-record prints."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RECORDS = REPO / "docs" / "records"
RECORD = RECORDS / "winning_solution_run_AH.json"
LEADER = RECORDS / "winning_solution_run_AI.json"  # the compiled throughput leader, the recipe beside it
RUN_T = RECORDS / "winning_solution_run_T.json"
TABLES = [RUN_T] + [RECORDS / f"winning_solution_run_{r}.json" for r in ("AF", "AG", "AH", "AI")]


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
    assert block.group(1).strip() == _printed("--headline", str(RECORD), str(LEADER))
    assert str(RECORD.relative_to(REPO)) in readme  # the README names the record it is printed from


def test_performance_tables_are_printed_from_their_records():
    text = (REPO / "docs" / "PERFORMANCE.md").read_text()
    for record in TABLES:
        assert _printed("--from-record", str(record)) in text, record.name
    # every speed claim sits beside its time to target: the winner's and the leader's lines carry both
    head = _printed("--headline", str(RECORD), str(LEADER))
    for record in TABLES[1:]:  # every row after the run line is a bullet, the last one ends the sentence
        rows = _printed("--headline", str(record)).splitlines()[1:]
        assert rows and all(r.startswith("- ") for r in rows) and rows[-1].endswith("."), record.name
    for line in head.splitlines()[1:]:
        if "images/s" in line:
            assert "s cold" in line and "s warm" in line, line
