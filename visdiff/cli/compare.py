"""``visdiff compare``: caption -> propose -> rank, the whole VisDiff pipeline."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from visdiff.cli import app
from visdiff.cli.options import LogToOption, SetInputs, run_command
from visdiff.cli.output import (
    CsvOption, DryRunOption, JsonOption, check_outputs, render_ranking, report_llm_usage, report_skipped, report_skipped_sets,
    results_folder, show_plan, stderr, write_table,
)
from visdiff.options import RunOptions
from visdiff.profiles import DEFAULT_PROFILE

if TYPE_CHECKING:
    from visdiff.result import CompareResult, MultiCompareResult

COMPARE_OPTIONS = ("profile", "captioner", "proposer", "scorer", "clip", "device", "precision", "full_decode", "ranker_mode", "batch_size", "llm", "base_url",
                   "rounds", "samples_per_set", "hypotheses", "goal", "seed", "both_directions", "pair_by", "refine", "alpha", "holdout", "purity", "rare",
                   "merge", "merge_threshold", "cache_dir", "no_cache",
                   "prompts", "temperature", "max_tokens", "system_message", "llm_seed", "caption_beams",
                   "caption_max_tokens", "caption_temperature",
                   "engine", "engine_address", "llm_concurrency", "prices")
OFFLINE_NOTE = (
    "using the offline profile (small built-in models, no downloads); for the paper's pipeline pass "
    "--profile paper, or pick models with --captioner, --llm and --clip"
)


@run_command(app, "compare", *COMPARE_OPTIONS, inputs=True, many_sets=True)
def compare_command(
    inputs: SetInputs,
    options: RunOptions,
    top: Annotated[int | None, typer.Option(min=1, help="Show only the best N rows per direction.", rich_help_panel="Output")] = None,
    out: Annotated[str | None, typer.Option("--out", help="Write report.html, results.json and results.csv into this folder.", rich_help_panel="Output")] = None,
    json_out: JsonOption = None,
    csv_out: CsvOption = None,
    quiet: bool = False,
    all_rows: Annotated[bool, typer.Option("--all", help="Also show the candidates that are not significant.", rich_help_panel="Output")] = False,
    score_col: Annotated[str | None, typer.Option("--score-col", help="One table, a number per image in this column (confidence, loss, a rating): propose from its highest and lowest quarter, rank by Spearman's rho with it. Give no set B.", rich_help_panel="Input")] = None,
    dry_run: DryRunOption = False,
    log_to: LogToOption = None,
) -> None:
    """Describe how set A differs from set B: caption, propose with an LLM, rank with CLIP.

    With three or more sets (or --group values), each set is described against all the others.
    """
    out = results_folder(out)
    check_outputs(json_out, csv_out)
    from visdiff.trackers import create_trackers, log_comparison, run_settings

    trackers = create_trackers(log_to, dry_run=dry_run)  # a missing package is said before any image is read
    if score_col is not None:
        from visdiff.cli.by_value import compare_by_value

        result = compare_by_value(inputs, options, score_col, out=out, json_out=json_out, csv_out=csv_out, top=top,
                                  all_rows=all_rows, dry_run=dry_run)
        if result is not None:
            log_comparison(trackers, result, settings=run_settings("compare", options, score_col=score_col),
                           out_dir=out)  # outputs first
        return
    if not quiet and options.profile == DEFAULT_PROFILE and not any((options.captioner, options.proposer, options.scorer, options.llm)):
        stderr.print(OFFLINE_NOTE, highlight=False, soft_wrap=True)
    if len(inputs.sources()) > 2:
        from visdiff.multi import check_options

        check_options(options)  # before any image is read
    sets, stages = inputs.load(options, proposing=True, dry_run=dry_run)
    if dry_run:
        from visdiff.plan import plan_compare

        show_plan(plan_compare(stages, sets).record(stages.prices, what="compare"), title=inputs.title,
                  json_path=json_out)
        return
    # The pipeline (torch) once the sets are read: not for --help, nor before a missing set is said.
    from visdiff.pipeline import compare, compare_many
    from visdiff.refine import RefinementFailed

    if len(sets) > 2:
        many = compare_many(sets, stages=stages)
        show_many(many, out=out, json_out=json_out, csv_out=csv_out, top=top, all_rows=all_rows)
        log_comparison(trackers, many, settings=run_settings("compare", options), out_dir=out)  # outputs first
        return
    try:
        result = compare(*sets, stages=stages)
    except RefinementFailed as failed:
        # The ranking that finished before the failed round is shown and written; the run still
        # fails (exit 1, the round and the service's error in one line).
        show(failed.result, title=inputs.title, out=out, json_out=json_out, csv_out=csv_out, top=top, all_rows=all_rows)
        raise
    show(result, title=inputs.title, out=out, json_out=json_out, csv_out=csv_out, top=top, all_rows=all_rows)
    log_comparison(trackers, result, settings=run_settings("compare", options), out_dir=out)  # outputs first


def show(result: CompareResult, *, title: str, out: Path | None, json_out: Path | None, csv_out: Path | None,
         top: int | None, all_rows: bool) -> None:
    """Outputs of a comparison of two sets: the tables (per direction), the report folder,
    JSON and CSV."""
    if out is not None:
        from visdiff.report import write_outputs

        written = write_outputs(result, out)
    report_skipped(result.config)
    table = result.table
    if str(json_out) != "-" and str(csv_out) != "-":
        heading = f"{title}  ({result.config['scorer']})"
        if table.attrs.get("ranked_by") == "tail":  # --rare
            from visdiff.cli.mode_output import render_rare_ranking

            render_rare_ranking(table, title=heading, limit=top, all_rows=all_rows)
        elif "direction" in table:
            for side in ("A", "B"):  # the title names the sets; each table says "more true of A" (or B)
                render_ranking(table[table["direction"] == side], title=heading, limit=top, favoured=side,
                               supported_only=not all_rows)
        else:
            render_ranking(table, title=heading, limit=top, supported_only=not all_rows)
    write_table(table, json_path=json_out, csv_path=csv_out, set_names=(result.set_a.name, result.set_b.name),
                extra={"config": result.config, "timings": result.timings, "proposals": result.proposals})
    if out is not None:
        stderr.print(f"wrote {', '.join(str(p) for p in written.values())}", highlight=False, soft_wrap=True)
    report_llm_usage(result.config.get("llm_usage"))


def show_many(result: MultiCompareResult, *, out: Path | None, json_out: Path | None, csv_out: Path | None,
              top: int | None, all_rows: bool) -> None:
    """Outputs of a comparison of several sets: one table per set (against the others), one
    report with a section per set, JSON and CSV rows with the set's name."""
    if out is not None:
        from visdiff.report import write_outputs

        written = write_outputs(result, out)
    report_skipped_sets({name: one.set_a.skipped for name, one in result.results.items()})
    if str(json_out) != "-" and str(csv_out) != "-":
        for name, one in result.results.items():
            render_ranking(one.table, title=f"A = {name}  vs  B = {one.set_b.name}  ({one.config['scorer']})",
                           limit=top, supported_only=not all_rows)
    write_table(result.table, json_path=json_out, csv_path=csv_out,
                extra={"config": result.config, "timings": result.timings,
                       "sets": {name: {"config": one.config, "timings": one.timings, "proposals": one.proposals}
                                for name, one in result.results.items()}})
    if out is not None:
        stderr.print(f"wrote {', '.join(str(p) for p in written.values())}", highlight=False, soft_wrap=True)
    report_llm_usage(result.config.get("llm_usage"))
