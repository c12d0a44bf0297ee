"""``visdiff rank``: rank given hypotheses on two image sets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from visdiff.cli import app
from visdiff.cli._common import (
    CacheDirOption, CsvOption, JsonOption, NoCacheOption, QuietOption, VerboseOption,
    cli_errors, render_ranking, report_skipped, set_verbosity, write_table,
)
from visdiff.errors import InputError
from visdiff.io import load_image_set
from visdiff.progress import progress_enabled
from visdiff.ranking import DEFAULT_ALPHA, DEFAULT_SCORER, rank


def _read_hypotheses(hypotheses: list[str] | None, hypotheses_file: Path | None) -> list[str]:
    items = list(hypotheses or [])
    if hypotheses_file is not None:
        try:
            items += hypotheses_file.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as e:
            raise InputError(f"cannot read hypotheses from {hypotheses_file}: {e}") from e
    if not items:
        raise InputError("give hypotheses with --hypothesis/-H or --hypotheses-file")
    return items


@app.command("rank")
def rank_command(
    set_a: Annotated[Path, typer.Argument(help="Set A: a folder of images or a path,group_name CSV.")],
    set_b: Annotated[Path, typer.Argument(help="Set B: a folder of images or a path,group_name CSV.")],
    group_a: Annotated[str | None, typer.Option("--group-a", help="Which group_name of a CSV set A takes (a CSV may hold both sets).")] = None,
    group_b: Annotated[str | None, typer.Option("--group-b", help="Which group_name of a CSV set B takes.")] = None,
    hypothesis: Annotated[list[str] | None, typer.Option("--hypothesis", "-H", help="A candidate difference (repeatable).")] = None,
    hypotheses_file: Annotated[Path | None, typer.Option("--hypotheses-file", "-f", exists=True, dir_okay=False, help="One hypothesis per line.")] = None,
    scorer: Annotated[str, typer.Option("--scorer", "-s", help="Scorer spec, e.g. 'open_clip:ViT-bigG-14:laion2b_s39b_b160k' (the paper's) or 'open_clip:ViT-B-32:/path/weights.pt'.", rich_help_panel="Model")] = DEFAULT_SCORER,
    clip: Annotated[str | None, typer.Option("--clip", help="Shorthand for --scorer open_clip:ARCH:PRETRAINED.", rich_help_panel="Model")] = None,
    device: Annotated[str | None, typer.Option(help="cuda, mps or cpu (default: best available).", rich_help_panel="Model")] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Images per forward pass.", rich_help_panel="Model")] = 64,
    alpha: Annotated[float, typer.Option(min=0.0, max=1.0, help="False-discovery rate for the significance flag.")] = DEFAULT_ALPHA,
    cache_dir: CacheDirOption = None,
    no_cache: NoCacheOption = False,
    json_out: JsonOption = None,
    csv_out: CsvOption = None,
    quiet: QuietOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Rank candidate differences by how well they separate A from B (AUROC, Welch t-test, BH q-values)."""
    set_verbosity(quiet, verbose)
    with cli_errors():
        table = rank(
            _read_hypotheses(hypothesis, hypotheses_file),
            load_image_set(set_a, group=group_a, name="A"),
            load_image_set(set_b, group=group_b, name="B"),
            scorer=f"open_clip:{clip}" if clip else scorer,
            alpha=alpha, cache_dir=cache_dir, use_cache=not no_cache, batch_size=batch_size,
            device=device, show_progress=progress_enabled(quiet),
        )
    report_skipped(table.attrs)
    if str(json_out) != "-" and str(csv_out) != "-":
        render_ranking(table, title=f"A = {set_a}  vs  B = {set_b}  ({table.attrs['scorer']})")
    with cli_errors():
        try:
            write_table(table, json_path=json_out, csv_path=csv_out, extra=dict(table.attrs))
        except OSError as e:
            raise InputError(f"cannot write results: {e}") from e
