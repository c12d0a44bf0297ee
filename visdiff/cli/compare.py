"""``visdiff compare``: caption -> propose -> rank, the whole VisDiff pipeline."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from visdiff.cli import app
from visdiff.cli._common import (
    CacheDirOption, CsvOption, JsonOption, NoCacheOption, QuietOption, VerboseOption, cli_errors, render_ranking,
    report_skipped, set_verbosity, stderr, write_table,
)
from visdiff.cli._models import (
    BaseUrlOption, BothDirectionsOption, CaptionerOption, ClipOption, DeviceOption, LlmOption, ProfileOption,
    ProposerOption, RoundsOption, SamplesOption, ScorerOption, SeedOption, scorer_spec,
)
from visdiff.pipeline import compare
from visdiff.profiles import DEFAULT_PROFILE
from visdiff.progress import progress_enabled
from visdiff.ranking import DEFAULT_ALPHA

OFFLINE_NOTE = (
    "using the offline profile (small built-in models, no downloads); for the paper's pipeline pass "
    "--profile paper, or pick models with --captioner, --llm and --clip"
)


@app.command("compare")
def compare_command(
    set_a: Annotated[Path, typer.Argument(help="Set A: a folder of images or a path,group_name CSV.")],
    set_b: Annotated[Path, typer.Argument(help="Set B: a folder of images or a path,group_name CSV.")],
    profile: ProfileOption = None,
    captioner: CaptionerOption = None,
    proposer: ProposerOption = None,
    scorer: ScorerOption = None,
    clip: ClipOption = None,
    device: DeviceOption = None,
    llm: LlmOption = None,
    base_url: BaseUrlOption = None,
    rounds: RoundsOption = 3,
    samples: SamplesOption = 20,
    seed: SeedOption = 0,
    both_directions: BothDirectionsOption = False,
    alpha: Annotated[float, typer.Option(min=0.0, max=1.0, help="False-discovery rate for the significance flag.")] = DEFAULT_ALPHA,
    top: Annotated[int | None, typer.Option(min=1, help="Show only the best N rows per direction.", rich_help_panel="Output")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Write report.html, results.json and results.csv into this folder.", rich_help_panel="Output", file_okay=False)] = None,
    json_out: JsonOption = None,
    csv_out: CsvOption = None,
    cache_dir: CacheDirOption = None,
    no_cache: NoCacheOption = False,
    quiet: QuietOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Describe how set A differs from set B: caption, propose with an LLM, rank with CLIP."""
    set_verbosity(quiet, verbose)
    scorer = scorer_spec(scorer, clip)
    if profile is None and not any((captioner, proposer, scorer, llm)) and not quiet:
        stderr.print(OFFLINE_NOTE, highlight=False, soft_wrap=True)
    with cli_errors():
        result = compare(
            set_a, set_b, profile=profile.value if profile else DEFAULT_PROFILE, captioner=captioner,
            proposer=proposer, scorer=scorer, llm=llm, base_url=base_url, rounds=rounds, samples_per_set=samples,
            seed=seed, alpha=alpha, both_directions=both_directions, cache_dir=cache_dir, use_cache=not no_cache,
            device=device, show_progress=progress_enabled(quiet),
        )
        if out is not None:
            from visdiff.report import write_outputs

            written = write_outputs(result, out)
    report_skipped(result.config)
    table = result.table
    if str(json_out) != "-" and str(csv_out) != "-":
        title = f"A = {set_a}  vs  B = {set_b}  ({result.config['scorer']})"
        if "direction" in table:
            for side in ("A", "B"):
                rows = table[table["direction"] == side]
                render_ranking(rows, title=f"{title}: more true of {side}", limit=top, favoured=side)
        else:
            render_ranking(table, title=title, limit=top)
    write_table(table, json_path=json_out, csv_path=csv_out,
                extra={"config": result.config, "timings": result.timings, "proposals": result.proposals})
    if out is not None:
        stderr.print(f"wrote {', '.join(str(p) for p in written.values())}", highlight=False, soft_wrap=True)
