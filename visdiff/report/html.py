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

from visdiff.report.evidence import EvidenceImage, ThumbnailCache, short_names, top_images
from visdiff.report.plots import HistogramPlot, score_histogram
from visdiff.report.results import ranked_table, settings_record, to_jsonable
from visdiff.types import CompareResult


@dataclass(frozen=True)
class HypothesisSection:
    """Everything the page shows for one ranked hypothesis."""

    rank: int
    row: dict
    plot: HistogramPlot
    top_a: list[EvidenceImage]
    top_b: list[EvidenceImage]


def fmt_number(value, digits: int = 3) -> str:
    """Fixed decimals, or 'n/a' for missing/non-finite values."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value:.{digits}f}"


def fmt_p(value) -> str:
    """p/q-values: scientific below 0.001, 'n/a' when undefined."""
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value:.1e}" if value < 1e-3 else f"{value:.3f}"


def fmt_setting(value) -> str:
    """A config value as one line of text (nested values as compact JSON)."""
    value = to_jsonable(value)
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _environment():
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("visdiff.report", "templates"),
        autoescape=True,  # every {{ }} is HTML-escaped, whatever the template name
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(num=fmt_number, p=fmt_p, setting=fmt_setting)
    return env


def hypothesis_sections(result: CompareResult, *, top_images_per_set: int) -> list[HypothesisSection]:
    """One section per table row, in rank order; thumbnails are shared across sections."""
    thumbnails = ThumbnailCache()
    scores_a = np.asarray(result.scores_a, dtype=np.float64)
    scores_b = np.asarray(result.scores_b, dtype=np.float64)
    names_a, names_b = short_names(result.set_a), short_names(result.set_b)
    sections = []
    for j, row in enumerate(ranked_table(result.table).to_dict("records")):
        sections.append(HypothesisSection(
            rank=j + 1,
            row=row,
            plot=score_histogram(scores_a[:, j], scores_b[:, j]),
            top_a=top_images(result.set_a, scores_a[:, j], result.captions_a, k=top_images_per_set,
                             thumbnails=thumbnails, names=names_a),
            top_b=top_images(result.set_b, scores_b[:, j], result.captions_b, k=top_images_per_set,
                             thumbnails=thumbnails, names=names_b),
        ))
    return sections


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


def render_report(result: CompareResult, *, top_images_per_set: int = 6) -> str:
    """The HTML text of the report for ``result``."""
    from visdiff import __version__

    check_shapes(result)
    return _environment().get_template("report.html.j2").render(
        result=result,
        config=settings_record(result.config),
        attrs=settings_record(result.table.attrs),
        sections=hypothesis_sections(result, top_images_per_set=top_images_per_set),
        version=__version__,
        created_at=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    )
