"""``report.html``: one page with the settings, the ranked table and, per hypothesis, the
top-scoring images of A and B and the score distributions. Everything is inline (thumbnails
as ``data:`` URIs, plots as SVG, no JavaScript), so the page opens with no network; a
Content-Security-Policy forbids scripts and remote loads outright, and jinja2 autoescaping
makes every user-controlled string (file names, captions, hypotheses) text, never markup.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np

from visdiff.ranking import format_p_value
from visdiff.report.evidence import EvidenceImage, ThumbnailCache, short_names, top_images
from visdiff.report.plots import HistogramPlot, score_histogram
from visdiff.report.results import ranked_table, settings_record
from visdiff.result import CompareResult, MultiCompareResult


# Lists of unreadable inputs in the config/attrs: the page lists them in their own section.
SKIPPED_KEYS = frozenset({"skipped_a", "skipped_b"})


@dataclass(frozen=True)
class HypothesisSection:
    """Everything the page shows for one ranked phrase.

    ``galleries`` are (set letter, top images) pairs, the set the phrase describes first.
    """

    anchor: str
    rank: int
    row: dict
    plot: HistogramPlot
    galleries: tuple[tuple[str, list[EvidenceImage]], ...]


@dataclass(frozen=True)
class RankingGroup:
    """Phrases more true of set ``over`` than of set ``under``, best first."""

    over: str
    under: str
    sections: list[HypothesisSection]


@dataclass(frozen=True)
class ReportPart:
    """One comparison on the page; ``name`` is its set when the page has several (each set
    against the others), ``prefix`` keeps its anchors apart from the other parts'."""

    name: str
    prefix: str
    result: CompareResult
    settings: list[tuple[str, str]]
    groups: list[RankingGroup]


def fmt_number(value, digits: int = 3) -> str:
    """Fixed decimals, or 'n/a' for missing/non-finite values."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value:.{digits}f}"


def setting_rows(settings: dict, prefix: str = "") -> list[tuple[str, str]]:
    """(name, text) rows of JSON-typed ``settings``; nested dicts become dotted names
    (``proposer.spec``), floats 4 significant digits (``results.json`` has them all), other
    values one line of text (lists as compact JSON)."""
    rows = []
    for key, value in settings.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            rows += setting_rows(value, prefix=f"{name}.")
        elif isinstance(value, str):
            rows.append((name, value))
        elif isinstance(value, float):
            rows.append((name, f"{value:.4g}"))
        else:
            rows.append((name, json.dumps(value, ensure_ascii=False)))
    return rows


def settings_table(result: CompareResult) -> list[tuple[str, str]]:
    """Settings shown on the page: the config, table metadata not already in it, stage timings.

    Skipped files are listed in their own section, and secrets are redacted.
    """
    config = settings_record(result.config)
    attrs = settings_record(result.table.attrs)
    shown = {k: v for k, v in config.items() if k not in SKIPPED_KEYS}
    shown.update({k: v for k, v in attrs.items() if k not in SKIPPED_KEYS and k not in config})
    timings = [(f"time: {stage}", f"{fmt_number(seconds, 2)} s") for stage, seconds in result.timings.items()]
    return setting_rows(shown) + timings


def environment():
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("visdiff.report", "templates"),
        autoescape=True,  # every {{ }} is HTML-escaped, whatever the template name
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(num=fmt_number, p=format_p_value)
    return env


def ranking_groups(result: CompareResult, *, top_images_per_set: int, anchor_prefix: str = "") -> list[RankingGroup]:
    """The table's rows as sections, grouped by direction (one group unless the table has a
    ``direction`` column); thumbnails are made once and shared across sections. Anchors start
    with ``anchor_prefix`` (one per comparison on a page of several)."""
    thumbnails = ThumbnailCache()
    scores = {"A": np.asarray(result.scores_a, dtype=np.float64), "B": np.asarray(result.scores_b, dtype=np.float64)}
    sets = {"A": result.set_a, "B": result.set_b}
    captions = {"A": result.captions_a, "B": result.captions_b}
    names = {side: short_names(image_set) for side, image_set in sets.items()}
    groups: dict[str, list[HypothesisSection]] = {}
    for j, row in enumerate(ranked_table(result.table).to_dict("records")):
        over = row.get("direction") or "A"
        sides = (over, "B" if over == "A" else "A")
        galleries = tuple(
            (side, top_images(sets[side], scores[side][:, j], captions[side], k=top_images_per_set,
                              thumbnails=thumbnails, names=names[side]))
            for side in sides
        )
        groups.setdefault(over, []).append(HypothesisSection(
            anchor=f"{anchor_prefix}h{j + 1}", rank=row["rank"], row=row,
            plot=score_histogram(scores["A"][:, j], scores["B"][:, j]), galleries=galleries,
        ))
    return [RankingGroup(over=over, under="B" if over == "A" else "A", sections=sections)
            for over, sections in groups.items()]


def check_shapes(result: CompareResult) -> None:
    """Score matrices must be (images, hypotheses) in set and table order."""
    m = len(result.table)
    for side, image_set, scores in (("a", result.set_a, result.scores_a), ("b", result.set_b, result.scores_b)):
        shape = np.shape(scores)
        if shape != (len(image_set), m):
            raise ValueError(
                f"scores_{side} has shape {shape}; expected ({len(image_set)}, {m}) "
                f"for {len(image_set)} images of set {side.upper()} and {m} hypotheses"
            )


def render_report(result: CompareResult | MultiCompareResult, *, top_images_per_set: int = 6) -> str:
    """The HTML text of the report for ``result``: for several sets, one section per set
    (the set against the others)."""
    from visdiff import __version__

    if isinstance(result, MultiCompareResult):
        named, title = list(result.results.items()), ", ".join(result.names)
    else:
        named, title = [("", result)], f"{result.set_a.name or 'A'} vs {result.set_b.name or 'B'}"
    parts = []
    for i, (name, one) in enumerate(named, start=1):
        check_shapes(one)
        prefix = f"s{i}-" if name else ""
        parts.append(ReportPart(name=name, prefix=prefix, result=one, settings=settings_table(one), groups=ranking_groups(
            one, top_images_per_set=top_images_per_set, anchor_prefix=prefix)))
    return environment().get_template("report.html.j2").render(
        parts=parts,
        title=title,
        alpha=named[0][1].table.attrs.get("alpha"),
        version=__version__,
        created_at=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    )
