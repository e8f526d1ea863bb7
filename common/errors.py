"""One error type for everything a user can fix: it carries a one-line message that names
the file or constant at fault and the fix, and the exit code the script returns."""

from __future__ import annotations

import functools
import signal
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
        except KeyboardInterrupt as err:  # SIGINT, or SIGTERM turned into common.runlock.Terminated

            print(f"interrupted ({interrupt_name(err)}); results written so far are kept", file=sys.stderr)
            return interrupt_exit_code(err)

    return wrapper


def load_config(name: str = "config"):
    """Import the settings module ``config.py``; a file that does not import (a syntax
    error, a bad expression) ends the process with one line naming the file and the line,
    never a traceback. Scripts call it before anything else imports ``config``."""
    import importlib
    import traceback

    if name in sys.modules:
        return sys.modules[name]
    try:
        return importlib.import_module(name)
    except SyntaxError as err:
        where = f"{err.filename}, line {err.lineno}"
        print(f"error: {where}: {err.msg}: fix that line of config.py (each setting is NAME = value)", file=sys.stderr)
    except Exception as err:  # an expression in config.py that raises
        sys.modules.pop(name, None)
        frames = [f for f in traceback.extract_tb(err.__traceback__) if f.filename.endswith(f"{name}.py")]
        where = f"{frames[-1].filename}, line {frames[-1].lineno}" if frames else f"{name}.py"
        print(f"error: {where}: {type(err).__name__}: {err}: fix that line of config.py", file=sys.stderr)
    raise SystemExit(2)


class Terminated(KeyboardInterrupt):
    """The process received a termination signal; ``signum`` says which."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def interrupt_name(err: BaseException) -> str:
    return signal.Signals(err.signum).name if isinstance(err, Terminated) else "SIGINT"


def interrupt_exit_code(err: BaseException) -> int:
    return 128 + (err.signum if isinstance(err, Terminated) else signal.SIGINT)
