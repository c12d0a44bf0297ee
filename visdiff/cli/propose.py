"""``visdiff propose``: candidate differences between two image sets, without ranking."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from visdiff.cli import app
from visdiff.cli.compare import COMPARE_OPTIONS
from visdiff.cli.options import (
    GroupAOption, GroupBOption, GroupColumnOption, SetArgument, SetBArgument, WhereOption,
    input_sets, run_command,
)
from visdiff.cli.output import check_outputs, stdout, write_text_file
from visdiff.options import RunOptions
from visdiff.tables import DEFAULT_GROUP_COLUMN
from visdiff.pipeline import propose


@run_command(app, "propose", *(name for name in COMPARE_OPTIONS if name != "alpha"))
def propose_command(
    set_a: SetArgument,
    options: RunOptions,
    set_b: SetBArgument = None,
    group_a: GroupAOption = None,
    group_b: GroupBOption = None,
    group_col: GroupColumnOption = DEFAULT_GROUP_COLUMN,
    where: WhereOption = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write {\"a_over_b\": [...], \"b_over_a\": [...]} to this file ('-' for stdout).", rich_help_panel="Output", dir_okay=False)] = None,
) -> None:
    """Propose short phrases that hold more for A than for B (one per line on stdout)."""
    check_outputs(json_out)
    sets = input_sets(set_a, set_b, group_a=group_a, group_b=group_b, group_col=group_col, where=where)
    found = {"a_over_b": propose(*sets, options)}
    if options.both_directions:
        found["b_over_a"] = propose(*reversed(sets), options)
    if json_out is not None:
        payload = json.dumps(found, indent=2, ensure_ascii=False)
        if str(json_out) == "-":
            typer.echo(payload)
            return
        write_text_file(json_out, payload + "\n")
    for key, phrases in found.items():
        if options.both_directions:
            stdout.print(f"# more true of {'A' if key == 'a_over_b' else 'B'}", highlight=False, markup=False)
        for phrase in phrases:
            stdout.print(phrase, highlight=False, markup=False, soft_wrap=True)
