"""``visdiff sweep``: one comparison per value of a table column, resumable, with an index page."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pandas as pd
import typer

from visdiff.cli import app
from visdiff.cli.compare import COMPARE_OPTIONS
from visdiff.cli.options import (
    GroupColumnOption, LogToOption, WhereOption, parse_where, run_command,
)
from visdiff.cli.output import DryRunOption, render_summary, report_llm_usage, results_folder, show_plan, stderr
from visdiff.options import RunOptions
from visdiff.ranking import format_p_value
from visdiff.tables import DEFAULT_GROUP_COLUMN

SWEEP = "Sweep"
SHOWN_COLUMNS = ["value", "n_a", "n_b", "top_hypothesis", "auroc", "q_value", "n_significant"]
SHOWN_HEADERS = {"top_hypothesis": "best hypothesis (or why skipped)", "q_value": "q", "n_significant": "n sig."}


@run_command(app, "sweep", *(name for name in COMPARE_OPTIONS if name != "both_directions"))
def sweep_command(
    table: Annotated[Path, typer.Argument(exists=True, help="A table (CSV, Parquet, datasets folder) of images.")],
    options: RunOptions,
    by: Annotated[str, typer.Option("--by", help="Column whose every value gets its own comparison (e.g. class).", rich_help_panel=SWEEP)],
    group_a: Annotated[str, typer.Option("--group-a", help="Group compared within each value: set A.", rich_help_panel=SWEEP)],
    group_b: Annotated[str, typer.Option("--group-b", help="Group compared within each value: set B.", rich_help_panel=SWEEP)],
    group_col: GroupColumnOption = DEFAULT_GROUP_COLUMN,
    where: WhereOption = None,
    top: Annotated[int, typer.Option(min=1, help="Ranked hypotheses kept per value in results.jsonl.", rich_help_panel=SWEEP)] = 5,
    out: Annotated[str | None, typer.Option("--out", help="Results folder (default: sweep-out/<table>-<by>). Rerunning into it resumes.", rich_help_panel=SWEEP)] = None,
    no_reports: Annotated[bool, typer.Option("--no-reports", help="Skip the per-value HTML reports.", rich_help_panel=SWEEP)] = False,
    log_to: LogToOption = None,
    dry_run: DryRunOption = False,
) -> None:
    """Compare --group-a with --group-b within every value of --by (e.g. per class), sharing models and
    cache; one fsynced line per value in <out>/results.jsonl, summary.csv, and index.html linking each
    value's report. Interrupt and rerun to resume."""
    from visdiff.sweep import SweepSpec, plan_sweep, run_sweep  # the pipeline (torch) only when a command runs, not for --help
    from visdiff.trackers import create_trackers, log_run, run_settings, sweep_run

    trackers = create_trackers(log_to, dry_run=dry_run)  # before the table is read or a model loads
    spec = SweepSpec(table=table, by=by, group_a=group_a, group_b=group_b, group_column=group_col,
                     where=parse_where(where), top=top)
    out_dir = results_folder(out) or Path("sweep-out") / f"{table.stem}-{by}"
    if dry_run:
        show_plan(plan_sweep(spec, out_dir, options), title=f"{table}: per {by}, {group_a} vs {group_b}")
        return
    run = run_sweep(spec, out_dir, options, reports=not no_reports)
    render_summary(shown_summary(run.summary), title=f"{table}: per {by}, {group_a} vs {group_b}", headers=SHOWN_HEADERS)
    stderr.print(f"{run.new_values} value(s) run, {run.resumed_values} already done; index: {run.out_dir / 'index.html'}",
                 highlight=False, soft_wrap=True)
    report_llm_usage(run.llm_usage)
    if trackers:  # index.html and summary.csv are written: a tracker failing loses nothing
        settings = run_settings("sweep", options, table=str(table), by=by, group_a=group_a, group_b=group_b,
                                group_column=group_col, where=where or [], top=top)
        log_run(trackers, sweep_run(run.summary, settings=settings, out_dir=run.out_dir, llm_usage=run.llm_usage))


def shown_summary(summary: pd.DataFrame) -> pd.DataFrame:
    """The summary columns shown on the terminal: sizes and the count of significant
    hypotheses as whole numbers, q as the ranked tables show it (scientific when small)."""
    from visdiff.sweep import counts_as_objects  # loaded with the sweep itself

    # A skipped value has no statistics: its q is shown as missing, not as undefined.
    q_values = [format_p_value(q) if status == "ok" else None for q, status in zip(summary["q_value"], summary["status"])]
    return counts_as_objects(summary)[SHOWN_COLUMNS].assign(q_value=q_values)
