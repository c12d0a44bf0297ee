"""The CLI's one error path: every failure becomes one line on stderr and an exit code.

- 2: usage and input errors (:class:`~visdiff.errors.InputError`: a bad value, with the choices);
- 1: model, service and system failures (naming the service or the file);
- 130: interrupted (Ctrl-C).

No traceback unless ``--debug``.
"""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console
from rich.markup import escape

from visdiff.errors import InputError, VisdiffError, display_text
from visdiff.redaction import redact_text

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

stderr = Console(stderr=True)


def fail(message: str, code: int) -> typer.Exit:
    # A message can carry a user's file or set name: neither markup nor control characters reach
    # the terminal; nor does a secret that a service echoed back.
    stderr.print(f"[red]error:[/red] {escape(display_text(redact_text(message)))}", highlight=False, soft_wrap=True)
    return typer.Exit(code=code)


def report_command_line_error(error: Exception) -> int:
    """Say, in one line like every other error, what typer found wrong in the command line
    itself (an unknown command or option, a value out of range, a missing argument); return
    the exit code. A command run without arguments has printed its help instead: nothing to
    add. Anything else is no command-line error and is raised again."""
    if isinstance(error, typer.Abort):  # typer's answer to an end of input
        fail("aborted: standard input ended", EXIT_FAILURE)
        return EXIT_FAILURE
    if not isinstance(error, typer.TyperException):
        raise error
    message = error.format_message().rstrip(".")
    if message:
        context = getattr(error, "ctx", None)
        hint = f" (see '{context.command_path} --help')" if context is not None else ""
        fail(message[:1].lower() + message[1:] + _refused_value(error) + hint, EXIT_USAGE)
    return getattr(error, "exit_code", EXIT_USAGE)


def _refused_value(error: Exception) -> str:
    """", got VALUE" when typer's message does not name the value it refused: its range and
    type checks are pydantic validations, whose errors hold the input."""
    try:
        value = error.__cause__.errors()[0]["input"]
    except (AttributeError, TypeError, LookupError):
        return ""
    return "" if f"'{value}'" in error.format_message() else f", got {value!r}"


def describe_os_error(error: OSError) -> str:
    """``file: reason`` for an OSError, without Python's ``[Errno N]`` noise."""
    where = error.filename if error.filename is not None else ""
    reason = error.strerror or str(error)
    return f"{where}: {reason}" if where else reason


@contextmanager
def cli_errors(*, debug: bool = False) -> Iterator[None]:
    """Turn every exception raised inside into a one-line message and an exit code."""
    try:
        yield
    except (typer.Exit, typer.Abort, typer.TyperException):
        raise
    except KeyboardInterrupt as e:
        if debug:
            print_traceback(e)
        raise fail("interrupted", EXIT_INTERRUPTED) from None
    except Exception as e:
        if debug:
            print_traceback(e)
        if isinstance(e, InputError):
            raise fail(str(e), EXIT_USAGE) from None
        if isinstance(e, VisdiffError):
            raise fail(str(e), EXIT_FAILURE) from None
        if isinstance(e, OSError):
            raise fail(describe_os_error(e), EXIT_FAILURE) from None
        raise fail(f"unexpected {type(e).__name__}: {e} (rerun with --debug for the traceback)", EXIT_FAILURE) from None


def print_traceback(error: BaseException) -> None:
    """``--debug``: the whole traceback, chained causes included, with every secret masked (a
    service's error text can quote the credentials it was sent)."""
    sys.stderr.write(redact_text("".join(traceback.format_exception(error))))
    sys.stderr.flush()


def set_verbosity(quiet: bool, verbose: bool) -> None:
    level = logging.ERROR if quiet else logging.INFO if verbose else logging.WARNING
    logging.getLogger("visdiff").setLevel(level)
    # Libraries log what visdiff reports itself (PIL: why a file cannot be decoded, which the
    # skipped-file list has): only their failures that visdiff does not catch are worth a line.
    logging.getLogger().setLevel(logging.CRITICAL if quiet else max(level, logging.WARNING))
    logging.getLogger("PIL").setLevel(logging.CRITICAL)
    logging.getLogger("huggingface_hub").setLevel(logging.CRITICAL if quiet else logging.WARNING)
