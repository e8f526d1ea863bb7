"""Test fixtures are not measurements: a record whose environment says ``synthetic_fixture``
(the comparison's test trees: tests/fixtures/comparison) is refused wherever results are
compared, unless the tests allow it with SUITE_ALLOW_FIXTURES=1."""

from __future__ import annotations

import os
from pathlib import Path

from common.errors import UserError

ALLOW_ENV = "SUITE_ALLOW_FIXTURES"


def refuse_fixture(record, path: str | Path) -> None:
    """UserError naming ``path`` where ``record`` is a synthetic test fixture and fixtures are not allowed."""
    if (record.environment or {}).get("synthetic_fixture") and os.environ.get(ALLOW_ENV) != "1":
        raise UserError(f"{path}: a synthetic test fixture (environment.synthetic_fixture is true), not a measured "
                        f"record; compare result trees written by the analysis scripts ({ALLOW_ENV}=1 is for tests)")
