"""Shared CLI output: result files, the ranked table, skipped-file notes."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from visdiff.cache_root import check_writable_folder
from visdiff.errors import InputError, display_text, excerpt
from visdiff.jsonable import to_jsonable
from visdiff.llm.usage import usage_line
from visdiff.report.results import csv_safe, provenance
from visdiff.ranking import format_p_value
from visdiff.stats import AUROC_INTERVAL_METHOD

# Characters of a hypothesis shown in the terminal table (the JSON and CSV keep it whole): a
# 100 KB hypothesis would otherwise fill thousands of lines.
SHOWN_HYPOTHESIS_CHARS = 200


stdout = Console()
stderr = Console(stderr=True)

JsonOption = Annotated[Path | None, typer.Option(
    "--json", help="Write results as JSON to this file ('-' for stdout).", rich_help_panel="Output", dir_okay=False)]
CsvOption = Annotated[Path | None, typer.Option(
    "--csv", help="Write results as CSV to this file ('-' for stdout).", rich_help_panel="Output", dir_okay=False)]
DryRunOption = Annotated[bool, typer.Option(
    "--dry-run", help="Read the sets and say what the run would do (images to caption and embed, LLM requests, "
    "tokens and cost, estimated); load no model, send no request, write nothing but this plan.",
    rich_help_panel="Output")]


def results_folder(out: str | None) -> Path | None:
    """``--out`` as a folder path that can be written (checked before any work), or None when
    not given. Declared as text: a path option reads ``--out ''`` as ".", and the results would
    land in the current folder."""
    if out is None:
        return None
    if not out.strip():
        raise InputError("--out is empty: give a results folder, or leave --out out")
    check_writable_folder(Path(out), "output folder")
    return Path(out)


def check_outputs(*files: Path | None) -> None:
    """Before any work: each output file ('-' = stdout, at most one of them) can be written, or
    ``InputError`` names the one that cannot."""
    if sum(str(f) == "-" for f in files if f is not None) > 1:
        raise InputError("only one output can go to standard output ('-'); give the others a file name")
    for file in files:
        if file is None or str(file) == "-":
            continue
        if file.is_dir():
            raise InputError(f"output file {file} is a folder")
        if not file.parent.is_dir():
            raise InputError(f"cannot write output file {file}: folder {file.parent} does not exist")
        check_writable_folder(file.parent, f"cannot write output file {file}: folder")


def write_output(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` ('-': standard output); a failure names the file (a write
    error alone does not)."""
    if str(path) == "-":
        typer.echo(text, nl=not text.endswith("\n"))
        return
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as e:
        raise OSError(e.errno, e.strerror, str(path)) from e


def write_table(table: pd.DataFrame, *, json_path: Path | None, csv_path: Path | None, extra: dict | None = None,
                set_names: tuple[str, str] | None = None) -> None:
    """Write ``table`` (and, for JSON, the version and time that made it and ``extra`` metadata)
    where asked; '-' means stdout. ``set_names`` (A's, B's) go into the JSON as ``set_a`` and
    ``set_b`` and into the CSV as last columns of those names, as in ``results.csv``."""
    named = dict(zip(("set_a", "set_b"), set_names or ()))
    if json_path is not None:
        document = {**provenance(), **(extra or {}), **named, "results": table.to_dict("records")}
        write_output(json_path, json.dumps(to_jsonable(document), indent=2) + "\n")
    if csv_path is not None:
        write_output(csv_path, csv_safe(table.assign(**named)).to_csv(index=False))


def render_ranking(table: pd.DataFrame, *, title: str = "", limit: int | None = None, favoured: str = "A",
                   supported_only: bool = False) -> None:
    """Rich table of ranked hypotheses on stdout.

    Only rows whose scores favour ``favoured`` (AUROC > 0.5) stand under "more true of
    ``favoured``"; the rest (AUROC <= 0.5) are tested but say the opposite or nothing, and are
    shown apart (with ``supported_only``, counted in one line).

    ``supported_only``: show only the significant rows (the best row when none is, marked as
    such) and say in one line how many more candidates were tried without significance (a
    proposer tries many; rows at AUROC 0.55 under one strong finding make the whole answer
    look unreliable). They are "not significant", not "at chance": on a few images even an
    AUROC of 0.8 can fall short of significance.
    """
    # Set names come from folder and file names: printed as text (not markup), controls escaped.
    title = display_text(title)
    favouring = table["favours"] == favoured
    contrary, table = table[~favouring], table[favouring]
    shown = table[table["significant"].astype(bool)] if supported_only else table
    if len(shown) == 0:
        shown = table.head(1)
    not_significant = table.drop(shown.index)
    if len(shown):
        title = f"{title}: more true of {favoured}" if title else f"more true of {favoured}"
        stdout.print(_ranking_view(shown if limit is None else shown.head(limit), title=title, favoured=favoured))
    else:
        stdout.print(Text(f"{title}: no candidate scores higher on {favoured}" if title else
                          f"no candidate scores higher on {favoured}"))
    if supported_only and len(shown) and not shown["significant"].astype(bool).any():
        stdout.print("No candidate is significant: the row above is only the best of those tried.", highlight=False)
    if len(not_significant):
        spread = f"AUROC {not_significant['auroc'].min():.2f}-{not_significant['auroc'].max():.2f}"
        stdout.print(f"{len(not_significant)} more candidate(s) were tried and are not significant ({spread}); "
                     "--all shows them", highlight=False)
    if len(contrary) and supported_only:
        stdout.print(f"{len(contrary)} candidate(s) proposed as more true of {favoured} score no higher on it "
                     "(AUROC <= 0.5); --all shows them", highlight=False)
    elif len(contrary):
        stdout.print(_ranking_view(contrary, favoured=favoured, title=f"tested, but not more true of {favoured} "
                                   "(AUROC <= 0.5)"))


def _ranking_view(rows: pd.DataFrame, *, title: str, favoured: str) -> Table:
    held_out = "auroc_proposal" in rows.columns
    # p is the one-sided test of the claim (scores higher on the favoured set), as q is: the
    # Mann-Whitney U test, whose statistic AUROC is, so the flag never contradicts the order.
    other = "B" if favoured == "A" else "A"
    caption = (f"p: one-sided Mann-Whitney U test ({favoured}>{other}); q: Benjamini-Hochberg; "
               f"CI: {AUROC_INTERVAL_METHOD}")
    if held_out:
        caption = f"{caption}\n{split_caption(rows.attrs)}"
    view = Table(title=Text(title) if title else None, show_lines=False, caption=caption, box=box.SIMPLE_HEAD,
                 pad_edge=False, collapse_padding=True)
    view.add_column("#", justify="right")
    view.add_column("hypothesis", ratio=1, min_width=10)
    columns = ["AUROC (95% CI)", "mean A", "mean B", f"p ({favoured}>{other})", "q", "sig."]
    if held_out:
        columns[1:1] = ["AUROC prop.", "p prop."]
    for name in columns:
        view.add_column(name, justify="center" if name == "sig." else "right", no_wrap=True)
    for i, row in enumerate(rows.itertuples(index=False), start=1):
        # Text cells: a hypothesis is shown as written, never read as markup.
        hypothesis = Text(_shown_hypothesis(row.hypothesis))
        if row.constant:
            hypothesis.append(" (same score on every image: says nothing)", style="yellow")
        if getattr(row, "merged", None):
            hypothesis.append(f" (also: {'; '.join(map(_shown_hypothesis, row.merged))})", style="dim")
        proposal = [f"{row.auroc_proposal:.3f}", format_p_value(row.p_greater_proposal)] if held_out else []
        view.add_row(
            str(i), hypothesis, f"{row.auroc:.3f} ({row.auroc_low:.2f}-{row.auroc_high:.2f})", *proposal,
            f"{row.mean_a:.3g}", f"{row.mean_b:.3g}", format_p_value(row.p_greater), format_p_value(row.q_value),
            "✓" if row.significant else "·",
        )
    return view


def _shown_hypothesis(hypothesis: str) -> str:
    """A hypothesis as the terminal table shows it: control characters escaped, then cut."""
    return excerpt(display_text(hypothesis), SHOWN_HYPOTHESIS_CHARS)


def split_caption(attrs: dict) -> str:
    """Which images the figures of a ``--holdout`` table come from."""
    split = attrs.get("holdout", {})
    return (f"AUROC, CI, means, p, q and sig. from the held-out images ({split.get('n_held_out_a')} of A, "
            f"{split.get('n_held_out_b')} of B); 'prop.': the proposal split the proposer saw "
            f"({split.get('n_proposal_a')} of A, {split.get('n_proposal_b')} of B), in sample")


def render_summary(summary: pd.DataFrame, *, title: str, caption: str | None = None, headers: dict | None = None,
                   text_columns: tuple[str, ...] = ()) -> None:
    """A compact table of per-unit results (benchmark splits, swept values) on stdout."""
    view = Table(title=title, caption=caption, box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    for column in summary.columns:
        text = column in text_columns or not pd.api.types.is_numeric_dtype(summary[column])
        view.add_column((headers or {}).get(column, column), justify="left" if text else "right")
    for row in summary.itertuples(index=False):
        view.add_row(*("–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.2f}" if isinstance(v, float)
                       else str(v) for v in row))
    stdout.print(view)


def show_plan(record: dict, *, title: str, json_path: Path | None = None) -> None:
    """A dry run's plan (:func:`visdiff.plan.plan_lines`) on stdout, or as JSON where asked."""
    from visdiff.plan import plan_lines

    if json_path is not None:
        write_output(json_path, json.dumps(to_jsonable(record), indent=2, ensure_ascii=False) + "\n")
        if str(json_path) == "-":
            return
    view = Table(title=f"dry run: {title}", caption="estimated; no model loaded, no request sent, nothing written",
                 box=box.SIMPLE_HEAD, show_header=False, pad_edge=False)
    view.add_column(style="bold")
    view.add_column(overflow="fold")
    for label, text in plan_lines(record):
        view.add_row(label, Text(text))
    stdout.print(view)


def report_llm_usage(usage: dict | None) -> None:
    """The run's LLM requests, tokens and cost estimate in one line (not with --quiet, nor for
    a run without LLM calls)."""
    if usage and usage["by_stage"] and logging.getLogger("visdiff").isEnabledFor(logging.WARNING):
        stderr.print(usage_line(usage), highlight=False, soft_wrap=True)


def report_skipped(attrs: dict) -> None:
    """One line per set with skipped inputs (not with --quiet: each was logged as a warning)."""
    report_skipped_sets({side.upper(): attrs.get(f"skipped_{side}") or [] for side in ("a", "b")})


def report_skipped_sets(skipped: dict[str, list]) -> None:
    """One line per named set with skipped inputs, as :func:`report_skipped`."""
    if not logging.getLogger("visdiff").isEnabledFor(logging.WARNING):
        return
    for name, entries in skipped.items():
        if entries:
            stderr.print(f"set {name}: skipped {len(entries)} file(s) that could not be used "
                         "(listed in the results with reasons)", highlight=False)
