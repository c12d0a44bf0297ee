"""``visdiff propose``: candidate differences between two image sets, without ranking."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from visdiff.cli import app
from visdiff.cli._common import CacheDirOption, NoCacheOption, QuietOption, VerboseOption, cli_errors, set_verbosity, stdout
from visdiff.cli._models import (
    BaseUrlOption, BothDirectionsOption, CaptionerOption, ClipOption, DeviceOption, LlmOption, ProfileOption,
    ProposerOption, RoundsOption, SamplesOption, ScorerOption, SeedOption, scorer_spec,
)
from visdiff.pipeline import propose
from visdiff.profiles import DEFAULT_PROFILE
from visdiff.progress import progress_enabled


@app.command("propose")
def propose_command(
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
    json_out: Annotated[Path | None, typer.Option("--json", help="Write {\"a_over_b\": [...], \"b_over_a\": [...]} to this file ('-' for stdout).", rich_help_panel="Output", dir_okay=False)] = None,
    cache_dir: CacheDirOption = None,
    no_cache: NoCacheOption = False,
    quiet: QuietOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Propose short phrases that hold more for A than for B (one per line on stdout)."""
    set_verbosity(quiet, verbose)
    options = dict(
        profile=profile.value if profile else DEFAULT_PROFILE, captioner=captioner, proposer=proposer,
        scorer=scorer_spec(scorer, clip), llm=llm, base_url=base_url, rounds=rounds, samples_per_set=samples,
        seed=seed, cache_dir=cache_dir, use_cache=not no_cache, device=device, show_progress=progress_enabled(quiet),
    )
    with cli_errors():
        found = {"a_over_b": propose(set_a, set_b, **options)}
        if both_directions:
            found["b_over_a"] = propose(set_b, set_a, **options)
    if json_out is not None:
        payload = json.dumps(found, indent=2, ensure_ascii=False)
        if str(json_out) == "-":
            typer.echo(payload)
            return
        json_out.write_text(payload + "\n", encoding="utf-8")
    for key, phrases in found.items():
        if both_directions:
            stdout.print(f"# more true of {'A' if key == 'a_over_b' else 'B'}", highlight=False, markup=False)
        for phrase in phrases:
            stdout.print(phrase, highlight=False, markup=False, soft_wrap=True)
