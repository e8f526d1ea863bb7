"""benchmarks/inference_ladder.py without measuring: --from-record prints the table of a record
(whole or cut short), and a bad record is refused in one line."""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "sections" / "performance_analysis"))
from test_inference_plots import ladder  # noqa: E402


def _main(argv):
    from benchmarks import inference_ladder

    return inference_ladder.main(argv)


def test_from_record_prints_the_table(tmp_path, capsys):
    path = tmp_path / "rec.json"
    path.write_text(json.dumps({"data": ladder(), "device": "cpu"}))
    assert _main(["--from-record", str(path)]) == 0
    out = capsys.readouterr().out
    assert "* ONNX Runtime" in out and "REFUSED" in out and "skipped: cuda_graph needs a CUDA device" in out
    assert "throughput winner within 20 ms" in out
    partial = ladder()
    del partial["latency_winner"]  # a run cut short
    path.write_text(json.dumps({"data": partial}))
    assert _main(["--from-record", str(path)]) == 0
    assert "partial record" in capsys.readouterr().out


def test_bad_record_is_refused_in_one_line(tmp_path, capsys):
    path = tmp_path / "bad.json"
    path.write_text("{not json")
    assert _main(["--from-record", str(path)]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bad.json" in err[0]
    path.write_text(json.dumps({"data": {"rungs": []}}))
    assert _main(["--from-record", str(path)]) != 0
    assert "no inference-ladder rungs" in capsys.readouterr().err
