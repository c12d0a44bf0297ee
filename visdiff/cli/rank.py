"""``visdiff rank``: rank given hypotheses on two image sets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from visdiff.cli import app
from visdiff.cli.options import SetInputs, run_command
from visdiff.cli.output import CsvOption, JsonOption, check_outputs, render_ranking, report_skipped, write_table
from visdiff.errors import InputError
from visdiff.options import RunOptions
from visdiff.ranking import clean_hypotheses


def _read_hypotheses(hypotheses: list[str] | None, hypotheses_file: Path | None) -> list[str]:
    items = list(hypotheses or [])
    if hypotheses_file is not None:
        try:
            items += hypotheses_file.read_text(encoding="utf-8-sig").splitlines()
        except (OSError, UnicodeDecodeError) as e:
            raise InputError(f"cannot read hypotheses from {hypotheses_file}: {e}") from e
    if not items:
        raise InputError("give hypotheses with --hypothesis/-H or --hypotheses-file")
    return clean_hypotheses(items)  # all blank is a usage error before any image is read


@run_command(app, "rank", "profile", "scorer", "clip", "device", "precision", "full_decode", "ranker_mode", "batch_size", "engine", "engine_address",
             "alpha", "holdout", "rare", "seed", "cache_dir", "no_cache", "llm_concurrency", inputs=True)
def rank_command(
    inputs: SetInputs,
    options: RunOptions,
    hypothesis: Annotated[list[str] | None, typer.Option("--hypothesis", "-H", help="A candidate difference (repeatable).")] = None,
    hypotheses_file: Annotated[Path | None, typer.Option("--hypotheses-file", "-f", exists=True, dir_okay=False, help="One hypothesis per line.")] = None,
    json_out: JsonOption = None,
    csv_out: CsvOption = None,
) -> None:
    """Rank candidate differences by how well they separate A from B (AUROC with its interval, Mann-Whitney test, BH q-values)."""
    check_outputs(json_out, csv_out)
    hypotheses = _read_hypotheses(hypothesis, hypotheses_file)
    sets, stages = inputs.load(options)
    from visdiff.pipeline import rank  # the pipeline (torch) once the sets are read, not for --help

    table = rank(hypotheses, *sets, stages=stages)
    report_skipped(table.attrs)
    if str(json_out) != "-" and str(csv_out) != "-":
        if table.attrs.get("ranked_by") == "tail":  # --rare
            from visdiff.cli.mode_output import render_rare_ranking

            render_rare_ranking(table, title=f"{inputs.title}  ({table.attrs['scorer']})", all_rows=True)
        else:
            render_ranking(table, title=f"{inputs.title}  ({table.attrs['scorer']})")
    write_table(table, json_path=json_out, csv_path=csv_out, extra=dict(table.attrs),
                set_names=(table.attrs["set_a"], table.attrs["set_b"]))
