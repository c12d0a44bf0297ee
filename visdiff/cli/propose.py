"""``visdiff propose``: candidate differences between two image sets, without ranking."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from visdiff.cli import app
from visdiff.cli.compare import COMPARE_OPTIONS
from visdiff.cli.options import SetInputs, run_command
from visdiff.cli.output import DryRunOption, check_outputs, report_llm_usage, show_plan, stdout, write_output
from visdiff.options import RunOptions


# --refine and merging work on a ranking, which propose does not make.
@run_command(app, "propose", *(name for name in COMPARE_OPTIONS if name not in ("alpha", "refine", "merge", "merge_threshold")),
             inputs=True)
def propose_command(
    inputs: SetInputs,
    options: RunOptions,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write {\"a_over_b\": [...], \"b_over_a\": [...]} to this file ('-' for stdout).", rich_help_panel="Output", dir_okay=False)] = None,
    dry_run: DryRunOption = False,
) -> None:
    """Propose short phrases that hold more for A than for B (one per line on stdout); with
    --holdout, from the proposal split of each set (rank them with the same --holdout and --seed)."""
    check_outputs(json_out)
    sets, stages = inputs.load(options, proposing=True, dry_run=dry_run)
    if dry_run:
        from visdiff.plan import plan_propose

        show_plan(plan_propose(stages, sets).record(stages.prices, what="propose"), title=inputs.title,
                  json_path=json_out)
        return
    from visdiff.pipeline import propose  # the pipeline (torch) once the sets are read, not for --help

    found = {"a_over_b": propose(*sets, stages=stages)}
    if options.both_directions:
        found["b_over_a"] = propose(*reversed(sets), stages=stages)
    report_llm_usage(stages.llm_usage())  # on stderr: stdout holds only the phrases
    if json_out is not None:
        write_output(json_out, json.dumps(found, indent=2, ensure_ascii=False) + "\n")
        if str(json_out) == "-":
            return
    for key, phrases in found.items():
        if options.both_directions:
            stdout.print(f"# more true of {'A' if key == 'a_over_b' else 'B'}", highlight=False, markup=False)
        for phrase in phrases:
            stdout.print(phrase, highlight=False, markup=False, soft_wrap=True)
