"""``visdiff compare TABLE --score-col COLUMN``: one set and a value per image, ranked by rho.

Checked before any model loads or image is read: one table (no set B, no second group), the
column present in it and a finite number in every chosen row.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from visdiff.cli.mode_output import render_value_ranking
from visdiff.cli.options import SetInputs, set_name
from visdiff.cli.output import report_skipped, show_plan, stderr, write_table
from visdiff.errors import InputError
from visdiff.image_sets import display_path
from visdiff.options import RunOptions
from visdiff.sources import existing_path, load_image_set
from visdiff.tables import is_table, parse_where, read_table, select_rows

if TYPE_CHECKING:  # torch: loaded once the input is known to be usable
    from visdiff.value_result import ValueResult


def check_score_column(inputs: SetInputs, column: str) -> None:
    """``InputError`` (exit 2) naming what is wrong with ``--score-col COLUMN`` here."""
    if not column.strip():
        raise InputError("invalid value for '--score-col': must be a column name, got ''")
    if inputs.set_b is not None or inputs.group_b is not None or inputs.more_sets or inputs.groups:
        raise InputError("--score-col compares one set with a value per image: give one table (and --group-a to "
                         "pick its rows), no set B")
    source = existing_path(inputs.set_a)
    if not is_table(source):
        raise InputError(f"--score-col {column!r} reads a column of a table; {display_path(source)} is not one "
                         "(a .csv, .parquet or datasets folder)")
    columns = list(read_table(source).columns)
    if column not in columns:
        raise InputError(f"{display_path(source)} has no --score-col column {column!r}; columns: {columns}")
    from visdiff.value_comparison import parse_value  # torch: only once the column is there

    rows = select_rows(source, group=inputs.group_a, group_column=inputs.group_col, where=parse_where(inputs.where),
                       pair_by=column)
    for key, label in zip(rows.pair_keys, rows.labels):
        parse_value(key, column, label)


def compare_by_value(inputs: SetInputs, options: RunOptions, column: str, *, out: Path | None,
                     json_out: Path | None, csv_out: Path | None, top: int | None, all_rows: bool,
                     dry_run: bool = False) -> ValueResult | None:
    """Propose from the two ends of the value, rank every phrase by |rho|, show and write; the
    result (with ``dry_run``: say what that would take, :mod:`visdiff.plan`; None)."""
    check_score_column(inputs, column)
    from visdiff.stages import RunStages  # torch: once the input is known to be usable
    from visdiff.value_comparison import ValueComparison

    stages = RunStages(options, proposing=True)  # specs and the proposer's key before any image is read
    # The rows --group-a and --where choose, each with its value as the pair key that score= reads.
    where = parse_where(inputs.where)
    name = inputs.name_a or set_name(inputs.set_a, inputs.group_a, inputs.group_col, where)
    image_set = load_image_set(inputs.set_a, group=inputs.group_a, group_column=inputs.group_col, where=where,
                               name=name, hashes=None if dry_run else stages.cache.file_hashes(), pair_by=column)
    if dry_run:
        import numpy as np

        from visdiff.plan import plan_by_value
        from visdiff.value_comparison import MIN_IMAGES, column_values

        image_set = image_set.require(MIN_IMAGES)
        plan = plan_by_value(stages, image_set, np.array(column_values(image_set, column)))
        show_plan(plan.record(stages.prices, what="compare"), title=f"{name} by {column}", json_path=json_out)
        return None
    result = ValueComparison.of_stages(stages, image_set, column).compare()
    if out is not None:
        from visdiff.report.by_value import write_value_outputs

        written = write_value_outputs(result, out)
    report_skipped({"skipped_a": result.config["skipped"]})
    title = f"{result.image_set.name} by {column}  ({result.config['scorer']})"
    if str(json_out) != "-" and str(csv_out) != "-":
        render_value_ranking(result.table, title=title, limit=top, all_rows=all_rows)
    write_table(result.table, json_path=json_out, csv_path=csv_out,
                extra={"config": result.config, "timings": result.timings, "proposals": result.proposals,
                       "score_column": column})
    if out is not None:
        stderr.print(f"wrote {', '.join(str(p) for p in written.values())}", highlight=False, soft_wrap=True)
    return result
