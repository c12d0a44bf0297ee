"""Rich display in Jupyter: the HTML that ``_repr_html_`` of :class:`~visdiff.result.RankedTable`,
:class:`~visdiff.result.ImageGallery` and :class:`~visdiff.result.CompareResult` returns.

Rendered by the report's jinja2 environment (autoescaping: hypotheses, file names and
captions are text, never markup) from ``templates/notebook.html.j2``; thumbnails are ``data:``
URIs, so a saved notebook shows them with no files beside it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from markupsafe import Markup

from visdiff.report.evidence import ThumbnailCache, short_names, top_images
from visdiff.report.html import environment, other_side
from visdiff.report.results import favours_its_side, ranked_table, row_side
from visdiff.result import CompareResult, ImageGallery, MultiCompareResult, set_label, set_summary

# How many of the best hypotheses (per direction) a CompareResult shows images for, and how many.
RESULT_HYPOTHESES_WITH_IMAGES = 3
RESULT_IMAGES_PER_SET = 6
THUMBNAIL_SIZE = 96


def _macros():
    return environment().get_template("notebook.html.j2").module


def _ranking(table: pd.DataFrame) -> Markup:
    rows = ranked_table(table).to_dict("records")
    favoured = [row for row in rows if favours_its_side(row)]
    apart = [row for row in rows if not favours_its_side(row)]
    return _macros().ranking(favoured, apart, table.attrs.get("alpha"), "direction" in table.columns,
                             table.attrs.get("holdout"))


def ranking_html(table: pd.DataFrame) -> str:
    """The ranked table with significance marked; rows whose scores favour the other set (or
    neither, constant ones among them) listed apart under it."""
    return str(Markup('<div class="visdiff">{}</div>').format(_ranking(table)))


def gallery_html(gallery: ImageGallery) -> str:
    """One set's images for a hypothesis, as small thumbnails with scores and names."""
    which = "Lowest" if gallery.lowest else "Highest"
    title = f"{which}-scoring images of {gallery.side} for “{gallery.hypothesis}”"
    return str(Markup('<div class="visdiff">{}</div>').format(_macros().gallery(title, gallery)))


def result_html(result: CompareResult) -> str:
    """The ranked table, then for the best hypotheses of each direction whose scores favour
    its set the top images of both sets, the set the phrase describes first."""
    macros = _macros()
    labels = {"A": set_label("A", result.set_a), "B": set_label("B", result.set_b)}
    parts = [Markup("<p><b>{}</b> vs <b>{}</b></p>").format(set_summary("A", result.set_a), set_summary("B", result.set_b))]
    parts.append(_ranking(result.table))
    thumbnails = ThumbnailCache(THUMBNAIL_SIZE)
    sets = {"A": result.set_a, "B": result.set_b}
    scores = {"A": np.asarray(result.scores_a, np.float64), "B": np.asarray(result.scores_b, np.float64)}
    captions = {"A": result.captions_a, "B": result.captions_b}
    names = {side: short_names(image_set) for side, image_set in sets.items()}
    table = ranked_table(result.table)
    for j, row in enumerate(table.to_dict("records")):
        if row["rank"] > RESULT_HYPOTHESES_WITH_IMAGES or not favours_its_side(row):
            continue
        over = row_side(row)
        parts.append(Markup("<p style=\"margin-top:1rem\"><b>{}. {}</b> (more true of {})</p>").format(
            row["rank"], row["hypothesis"], labels[over]))
        for side in (over, other_side(over)):
            shown = top_images(sets[side], scores[side][:, j], captions[side], k=RESULT_IMAGES_PER_SET,
                               thumbnails=thumbnails, names=names[side])
            parts.append(macros.gallery(f"Highest-scoring in {labels[side]}", shown))
    return str(Markup('<div class="visdiff">{}</div>').format(Markup("").join(parts)))


def multi_result_html(result: MultiCompareResult) -> str:
    """Per set, a heading and its :func:`result_html` against the other sets."""
    parts = [Markup("<h3>{} vs the others</h3>{}").format(name, Markup(result_html(one)))
             for name, one in result.results.items()]
    return str(Markup("").join(parts))
