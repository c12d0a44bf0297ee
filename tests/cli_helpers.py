"""The one way tests run the ``visdiff`` command line in their own process: as the
executable runs it (:func:`visdiff.entry.run`: typer not standalone, its command-line errors
in one line, exit codes 2/1/130), with stdin, stdout and stderr captured.

What only a process shows (Ctrl-C, the process's own exit, imports, closed or full file
descriptors, capabilities) stays with subprocesses in the tests that check it. Log records
go to pytest's handlers (``caplog``) here, as :func:`visdiff.cli.setup_logging` adds no
handler of its own to a root logger that has some.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from click.testing import CliRunner, Result

PROG_NAME = "visdiff"


class _Executable:
    """What :class:`click.testing.CliRunner` invokes: ``visdiff``'s entry point, up to its exit."""

    name = PROG_NAME

    def main(self, args: Sequence[str], prog_name: str, **extra) -> None:
        from visdiff.entry import run

        raise SystemExit(run(list(args), prog_name=prog_name))


def run_cli(*args, input: str | bytes | None = None, env: Mapping[str, str | None] | None = None) -> Result:
    """``visdiff ARGS`` (each made a string) in this process; a :class:`click.testing.Result`
    with ``exit_code``, ``stdout``, ``stderr`` and ``output`` (both, as written)."""
    return CliRunner().invoke(_Executable(), [str(a) for a in args], input=input, env=env)
