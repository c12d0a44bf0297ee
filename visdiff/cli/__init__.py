"""The ``visdiff`` command: a thin layer over the public API, one module per subcommand.

Results go to stdout, logs and progress to stderr. Exit codes: 0 ok, 1 failure (model,
service or system), 2 bad input or usage, 130 interrupted; see :mod:`visdiff.cli.errors`.
"""

from __future__ import annotations

import logging
import sys
from typing import Annotated

import typer

from visdiff import __version__

app = typer.Typer(
    name="visdiff",
    help="Describe in plain words how image set A differs from image set B.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)


def show_version(asked: bool) -> None:
    if asked:
        typer.echo(f"visdiff {__version__}")
        raise typer.Exit()


@app.callback(help=app.info.help)
def version_option(
    version: Annotated[bool, typer.Option("--version", callback=show_version, is_eager=True,
                                          help="Print visdiff's version and exit.")] = False,
) -> None:
    pass  # the app's own options: --version


def setup_logging() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s", stream=sys.stderr)
    # huggingface_hub prints through a handler of its own: passed on to ours too, every
    # retry of a download would show twice.
    logging.getLogger("huggingface_hub").propagate = False


# Each module adds its commands to `app`.
from visdiff.cli import bench, cache, caption, compare, embed, propose, rank, serve, sweep  # noqa: E402, F401
