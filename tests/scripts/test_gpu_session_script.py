"""scripts/gpu_session.sh: every step name is handled once (bash takes the first matching
case branch, so a repeated label silently never runs), and every test file it names exists."""
import re
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "gpu_session.sh"


def _labels(text: str) -> list[str]:
    body = text.split('for what in "$@"; do', 1)[1]
    return re.findall(r"^\s+([a-z|]+)\)", body, flags=re.M)


def test_each_step_is_handled_once():
    labels = [name for group in _labels(SCRIPT.read_text()) for name in group.split("|")]
    assert labels, "no case branches found in scripts/gpu_session.sh"
    repeated = sorted({x for x in labels if labels.count(x) > 1})
    assert not repeated, f"scripts/gpu_session.sh handles {repeated} twice: only the first branch runs"


def test_usage_line_names_every_step():
    text = SCRIPT.read_text()
    usage = re.search(r"# Usage.*\[([a-z|]+)\]", text).group(1).split("|")
    labels = [name for group in _labels(text) for name in group.split("|")]
    assert sorted(usage) == sorted(labels)


def test_named_test_files_exist():
    root = SCRIPT.parents[1]
    for path in re.findall(r"(tests/[\w/]+\.py)", SCRIPT.read_text()):
        assert (root / path).is_file(), f"scripts/gpu_session.sh runs {path}, which does not exist"
