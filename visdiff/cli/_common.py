"""Shared CLI pieces: error handling, output options, table rendering."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from visdiff.config import CACHE_ENV
from visdiff.errors import InputError, VisdiffError

stdout = Console()
stderr = Console(stderr=True)


@contextmanager
def cli_errors() -> Iterator[None]:
    """Known errors become a one-line message: exit 2 for bad input, 1 for everything else."""
    try:
        yield
    except InputError as e:
        stderr.print(f"[red]error:[/red] {escape(str(e))}", highlight=False, soft_wrap=True)
        raise typer.Exit(code=2) from None
    except (VisdiffError, ValueError) as e:
        stderr.print(f"[red]error:[/red] {escape(str(e))}", highlight=False, soft_wrap=True)
        raise typer.Exit(code=1) from None


def set_verbosity(quiet: bool, verbose: bool) -> None:
    level = logging.ERROR if quiet else logging.INFO if verbose else logging.WARNING
    logging.getLogger("visdiff").setLevel(level)


CacheDirOption = Annotated[
    Path | None,
    typer.Option("--cache-dir", envvar=CACHE_ENV, help="Cache folder (default: the user cache dir).",
                 rich_help_panel="Cache", file_okay=False),
]
NoCacheOption = Annotated[bool, typer.Option("--no-cache", help="Neither read nor write the cache.", rich_help_panel="Cache")]
JsonOption = Annotated[Path | None, typer.Option("--json", help="Write results as JSON to this file ('-' for stdout).", rich_help_panel="Output", dir_okay=False)]
CsvOption = Annotated[Path | None, typer.Option("--csv", help="Write results as CSV to this file ('-' for stdout).", rich_help_panel="Output", dir_okay=False)]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or warnings, only results and errors.", rich_help_panel="Output")]
VerboseOption = Annotated[bool, typer.Option("--verbose", "-v", help="Log each step.", rich_help_panel="Output")]


class Precision(str, Enum):
    auto = "auto"
    fp32 = "fp32"
    fp16 = "fp16"
    bf16 = "bf16"


def _jsonable(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def table_records(table: pd.DataFrame) -> list[dict]:
    return [{k: _jsonable(v.item() if hasattr(v, "item") else v) for k, v in row.items()} for row in table.to_dict("records")]


def write_table(table: pd.DataFrame, *, json_path: Path | None, csv_path: Path | None, extra: dict | None = None) -> None:
    """Write ``table`` (and ``extra`` metadata, for JSON) where asked; '-' means stdout."""
    if json_path is not None:
        payload = json.dumps({**(extra or {}), "results": table_records(table)}, indent=2)
        if str(json_path) == "-":
            typer.echo(payload)
        else:
            json_path.write_text(payload + "\n", encoding="utf-8")
    if csv_path is not None:
        if str(csv_path) == "-":
            typer.echo(table.to_csv(index=False), nl=False)
        else:
            table.to_csv(csv_path, index=False)


def render_ranking(table: pd.DataFrame, *, title: str = "", limit: int | None = None, favoured: str = "A") -> None:
    """Rich table of ranked hypotheses on stdout."""
    view = Table(title=title or None, show_lines=False)
    for name, justify in [("#", "right"), (f"hypothesis (more true of {favoured})", "left"), ("AUROC", "right"),
                          ("mean A", "right"), ("mean B", "right"), ("p", "right"), ("q", "right"), ("sig.", "center")]:
        view.add_column(name, justify=justify)
    rows = table if limit is None else table.head(limit)
    for i, row in enumerate(rows.itertuples(index=False), start=1):
        view.add_row(
            str(i), row.hypothesis, f"{row.auroc:.3f}", f"{row.mean_a:.4g}", f"{row.mean_b:.4g}",
            _fmt_p(row.p_value), _fmt_p(row.q_value), "✓" if row.significant else "·",
        )
    stdout.print(view)


def _fmt_p(p: float) -> str:
    return "nan" if not math.isfinite(p) else f"{p:.2e}" if p < 1e-3 else f"{p:.3f}"


def report_skipped(attrs: dict) -> None:
    for side in ("a", "b"):
        skipped = attrs.get(f"skipped_{side}") or []
        if skipped:
            stderr.print(f"set {side.upper()}: skipped {len(skipped)} unreadable file(s)", highlight=False)
