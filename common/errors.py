"""One error type for everything a user can fix: it carries a one-line message that names
the file or constant at fault and the fix, and the exit code the script returns."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable


class UserError(Exception):
    """A problem the user can fix. ``str(err)`` is the one line shown to them."""

    def __init__(self, message: str, exit_code: int = 2):
        super().__init__(message.replace("\n", " "))
        self.exit_code = exit_code


def run_main(main: Callable[[list[str] | None], int]) -> Callable[[list[str] | None], int]:
    """Wrap a script's ``main`` so that a UserError becomes one line on stderr and a
    non-zero exit, never a traceback."""

    @functools.wraps(main)
    def wrapper(argv: list[str] | None = None) -> int:
        try:
            return main(argv)
        except UserError as err:
            print(f"error: {err}", file=sys.stderr)
            return err.exit_code
        except KeyboardInterrupt:
            print("interrupted; results written so far are kept", file=sys.stderr)
            return 130

    return wrapper
