"""``report.html``: one page with the settings, the ranked table and, per hypothesis, the
top-scoring images of A and B and the score distributions. Everything is inline (thumbnails
as ``data:`` URIs, plots as SVG, no JavaScript), so the page opens with no network; a
Content-Security-Policy forbids scripts and remote loads outright, and jinja2 autoescaping
makes every user-controlled string (file names, captions, hypotheses) text, never markup.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np

from visdiff.evidence import Gallery, ThumbnailCache, short_names, top_images
from visdiff.html_templates import environment, fmt_number
from visdiff.report.plots import HistogramPlot, score_histogram
from visdiff.report.rare_view import RareView, rare_view
from visdiff.llm.usage import usage_rows
from visdiff.report.results import SETTING_GROUP_ORDER, grouped_settings
from visdiff.result import (CompareResult, MultiCompareResult, favours_its_side, other_side, ranked_table, row_side,
                            set_label, set_name)


@dataclass(frozen=True)
class HypothesisSection:
    """Everything the page shows for one ranked phrase.

    ``galleries`` are (set letter, top images) pairs, the set the phrase describes first.
    """

    anchor: str
    rank: int
    row: dict
    plot: HistogramPlot
    galleries: tuple[tuple[str, Gallery], ...]


@dataclass(frozen=True)
class RankingGroup:
    """Phrases proposed for set ``over`` against set ``under``: ``sections`` those whose scores
    favour ``over`` (more true of it), best first; ``apart`` the rows of the others (scores
    favouring ``under``, or neither), which the page lists apart, never under "more true of"."""

    over: str
    under: str
    sections: list[HypothesisSection]
    apart: list[dict]


@dataclass(frozen=True)
class SettingsGroup:
    """One group of the settings table (stages, proposing, statistics, runtime, other)."""

    name: str
    rows: list[tuple[str, str]]


@dataclass(frozen=True)
class ReportPart:
    """One comparison on the page; ``name`` is its set when the page has several (each set
    against the others), ``prefix`` keeps its anchors apart from the other parts'. ``names`` and
    ``labels`` say what A and B are ("dogs", "A (dogs)")."""

    name: str
    prefix: str
    result: CompareResult
    settings: list[SettingsGroup]
    groups: list[RankingGroup]
    names: dict[str, str]
    labels: dict[str, str]
    rare: RareView | None = None  # --rare: the tail table and the images shown to the proposer


def setting_text(value) -> str:
    """One setting as one line: texts as they are, floats to 4 significant digits
    (``results.json`` has them all), anything else as compact JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return f"{value:.4g}"
    return json.dumps(value, ensure_ascii=False)


def settings_table(result: CompareResult) -> list[SettingsGroup]:
    """Settings shown on the page, by group, unset ones left out (:func:`grouped_settings`),
    stage timings with the runtime ones. Skipped files are listed in their own section, and
    secrets are redacted."""
    grouped = grouped_settings(result.config, result.table.attrs)
    rows = {name: [(key, setting_text(value)) for key, value in grouped.get(name, {}).items()]
            for name in SETTING_GROUP_ORDER}
    rows["runtime"] += [(f"time: {stage}", f"{fmt_number(seconds, 2)} s") for stage, seconds in result.timings.items()]
    # Tokens and cost per stage in words, not the record's nested lists.
    rows["usage"] = usage_rows(result.config["llm_usage"]) if "llm_usage" in result.config else []
    return [SettingsGroup(name, group_rows) for name, group_rows in rows.items() if group_rows]


def ranking_groups(result: CompareResult, *, top_images_per_set: int, anchor_prefix: str = "") -> list[RankingGroup]:
    """The table's rows grouped by direction (one group unless the table has a ``direction``
    column): a section per row whose scores favour its set, the other rows apart; thumbnails
    are made once and shared across sections. Anchors start with ``anchor_prefix`` (one per
    comparison on a page of several)."""
    thumbnails = ThumbnailCache()
    scores = {"A": np.asarray(result.scores_a, dtype=np.float64), "B": np.asarray(result.scores_b, dtype=np.float64)}
    sets = {"A": result.set_a, "B": result.set_b}
    captions = {"A": result.captions_a, "B": result.captions_b}
    names = {side: short_names(image_set) for side, image_set in sets.items()}
    groups: dict[str, RankingGroup] = {}
    for j, row in enumerate(ranked_table(result.table).to_dict("records")):
        over = row_side(row)
        group = groups.setdefault(over, RankingGroup(over=over, under=other_side(over), sections=[], apart=[]))
        if not favours_its_side(row):
            group.apart.append(row)
            continue
        galleries = tuple(
            (side, top_images(sets[side], scores[side][:, j], captions[side], k=top_images_per_set,
                              thumbnails=thumbnails, names=names[side]))
            for side in (over, group.under)
        )
        group.sections.append(HypothesisSection(
            anchor=f"{anchor_prefix}h{j + 1}", rank=row["rank"], row=row,
            plot=score_histogram(scores["A"][:, j], scores["B"][:, j]), galleries=galleries,
        ))
    return list(groups.values())


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


def report_part(name: str, prefix: str, result: CompareResult, *, top_images_per_set: int) -> ReportPart:
    """One comparison's part of the page."""
    check_shapes(result)
    sets = {"A": result.set_a, "B": result.set_b}
    return ReportPart(
        name=name, prefix=prefix, result=result, settings=settings_table(result),
        groups=ranking_groups(result, top_images_per_set=top_images_per_set, anchor_prefix=prefix),
        names={side: set_name(side, image_set) for side, image_set in sets.items()},
        labels={side: set_label(side, image_set) for side, image_set in sets.items()},
        rare=rare_view(result),
    )


def render_report(result: CompareResult | MultiCompareResult, *, top_images_per_set: int = 6) -> str:
    """The HTML text of the report for ``result``: for several sets, one section per set
    (the set against the others)."""
    from visdiff import __version__

    if isinstance(result, MultiCompareResult):
        named, title = list(result.results.items()), ", ".join(result.names)
    else:
        named = [("", result)]
        title = f"{set_name('A', result.set_a) or 'A'} vs {set_name('B', result.set_b) or 'B'}"
    parts = [report_part(name, f"s{i}-" if name else "", one, top_images_per_set=top_images_per_set)
             for i, (name, one) in enumerate(named, start=1)]
    return environment().get_template("report.html.j2").render(
        parts=parts,
        title=title,
        alpha=named[0][1].table.attrs.get("alpha"),
        version=__version__,
        created_at=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    )
