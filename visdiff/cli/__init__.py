"""The ``visdiff`` command: a thin layer over the public API, one module per subcommand.

Results go to stdout, logs and progress to stderr. Exit codes: 0 ok, 1 failure (model,
service or system), 2 bad input or usage, 130 interrupted; see :mod:`visdiff.cli.errors`.
"""

from __future__ import annotations

import logging
import sys

import typer

app = typer.Typer(
    name="visdiff",
    help="Describe in plain words how image set A differs from image set B.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)


def setup_logging() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s", stream=sys.stderr)
    # huggingface_hub prints through a handler of its own: passed on to ours too, every
    # retry of a download would show twice.
    logging.getLogger("huggingface_hub").propagate = False


# Each module adds its commands to `app`.
from visdiff.cli import bench, cache, caption, compare, embed, propose, rank, sweep  # noqa: E402, F401
