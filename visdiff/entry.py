"""The ``visdiff`` executable: answers Ctrl-C and a closed or full standard output with an
exit code and one line, from the first instant (the CLI and its models import slowly)."""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import sys
import threading

EXIT_FAILURE = 1
EXIT_INTERRUPTED = 130


def _on_interrupt(signum, frame) -> None:
    """Ctrl-C raises KeyboardInterrupt, so a command can save its work, unless a module is
    being imported: raised inside an extension's initialisation (torch's, through pybind11)
    it aborted the process ("terminate called ... KeyboardInterrupt", status -6) or ended it
    by the signal (-2) instead of exit 130. An import has no work to save: exit at once."""
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            sys.stderr.write("error: interrupted\n")
            sys.stderr.flush()
            os._exit(EXIT_INTERRUPTED)
        frame = frame.f_back
    raise KeyboardInterrupt


def main() -> None:
    signal.signal(signal.SIGINT, _on_interrupt)
    code = run()
    if code:
        # Nothing left to flush into a broken stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    _exit(code)


def run(args: list[str] | None = None, prog_name: str | None = None) -> int:
    """Run the command line ``args`` (default: ``sys.argv[1:]``) as the executable does, up to
    its exit: every error said in one line on stderr; return the exit code. Tests call it in
    their own process (``tests/cli_helpers.py``); :func:`main` adds the process's part."""
    try:
        from visdiff.cli import app, setup_logging
        from visdiff.cli.errors import report_command_line_error

        setup_logging()
        try:
            # Not standalone: typer would print its own boxed errors for the command line.
            code = app(args, prog_name=prog_name, standalone_mode=False)
            code = code if isinstance(code, int) else 0  # an exit code, or a command's return value
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else int(e.code is not None)
        except Exception as e:  # typer's own: the command line is wrong (or stdin ended, which it aborts on)
            code = report_command_line_error(e)
        sys.stdout.flush()
    except KeyboardInterrupt:
        sys.stderr.write("error: interrupted\n")
        code = EXIT_INTERRUPTED
    except OSError as e:
        # Standard output closed or full (`visdiff ... | head`, `> /dev/full`).
        sys.stderr.write(f"error: cannot write the output: {e.strerror or e}\n")
        code = EXIT_FAILURE
    return code


def _exit(code: int) -> None:
    """Exit as the interpreter does (other threads joined, exit handlers run: Ray's shutdown,
    logging's flush, temporary folders), then end the process without tearing the interpreter
    down: after importing torch that took 0.5 s, with sentence-transformers 1.4 s (measured),
    and protects nothing once every output is written and flushed."""
    try:
        for thread in threading.enumerate():
            if thread is not threading.main_thread() and not thread.daemon:
                thread.join()
        atexit._run_exitfuncs()  # private, but the one way to run them before os._exit
    except KeyboardInterrupt:
        code = EXIT_INTERRUPTED
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)
