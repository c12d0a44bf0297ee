"""Result types shared by the pipeline, the CLI, reports and the benchmark, and how a ranked
table reads (rank numbers, the side a row is for).

Each shows itself as plain text, and as rich HTML in Jupyter (``_repr_html_``): rendered by the
report's jinja2 environment (autoescaping: hypotheses, file names and captions are text, never
markup) from ``templates/notebook.html.j2``; thumbnails are ``data:`` URIs, so a saved notebook
shows them with no files beside it. The report writers (:mod:`visdiff.report`) build on these
types; nothing here imports them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from markupsafe import Markup

from visdiff.evidence import EvidenceImage, ThumbnailCache, Tie, short_names, top_images
from visdiff.html_templates import environment
from visdiff.image_sets import ImageSet

# How many of the best hypotheses (per direction) a CompareResult shows images for, and how many.
RESULT_HYPOTHESES_WITH_IMAGES = 3
RESULT_IMAGES_PER_SET = 6
THUMBNAIL_SIZE = 96


def set_name(letter: str, image_set: ImageSet) -> str:
    """The set's name (folder, table selection or given name), or ``""`` when it says no more
    than its letter: a report reading "A = A" tells nobody what was compared."""
    name = image_set.name.strip()
    return "" if name.upper() in ("", letter.upper()) else name


def set_label(letter: str, image_set: ImageSet) -> str:
    """``A (dogs)``, or ``A`` for a set without a name of its own."""
    name = set_name(letter, image_set)
    return f"{letter} ({name})" if name else letter


def set_summary(letter: str, image_set: ImageSet) -> str:
    """``A = dogs (12 images)``, or ``A (12 images)`` for a set without a name of its own."""
    name = set_name(letter, image_set)
    return f"{letter}{f' = {name}' if name else ''} ({len(image_set)} images)"


def other_side(side: str) -> str:
    return "B" if side == "A" else "A"


def row_side(row: dict) -> str:
    """The set a ranked row's hypothesis was proposed for: its ``direction``, else A."""
    return row.get("direction") or "A"


def favours_its_side(row: dict) -> bool:
    """The row's scores favour the set it was proposed for: only then is it "more true of" that set."""
    return row["favours"] == row_side(row)


def ranked_table(table: pd.DataFrame) -> pd.DataFrame:
    """The ranked table with a 1-based ``rank`` column first.

    With a ``direction`` column (``compare(both_directions=True)``: rows of phrases more true of
    A, then rows more true of B) ranks count within each direction.
    """
    table = table.reset_index(drop=True)
    if "direction" in table.columns:
        rank = table.groupby("direction", sort=False).cumcount() + 1
    else:
        rank = range(1, len(table) + 1)
    return table.assign(rank=rank)[["rank", *table.columns]]


class RankedTable(pd.DataFrame):
    """The ranked table of :func:`visdiff.rank` and :meth:`visdiff.Comparison.rank`: a plain
    pandas DataFrame (tables derived from it are plain DataFrames) that Jupyter shows with
    significant rows marked and readable p- and q-values."""

    @property
    def _constructor(self):
        return pd.DataFrame

    @classmethod
    def of(cls, table: pd.DataFrame) -> RankedTable:
        ranked = cls(table)
        ranked.attrs = dict(table.attrs)
        return ranked

    def _repr_html_(self) -> str:
        return ranking_html(self)


@dataclass(frozen=True)
class ImageGallery:
    """The images of one set that score highest (or ``lowest``) for a hypothesis, in order;
    ``tie``: the images at the cut share their score with images not shown."""

    hypothesis: str
    side: str
    lowest: bool
    images: list[EvidenceImage]
    tie: Tie | None = None

    def __str__(self) -> str:
        which = "lowest" if self.lowest else "highest"
        lines = [f"{which}-scoring images of {self.side} for {self.hypothesis!r}:"]
        lines += [f"{i:>3}. {image.score:.4f}  {image.name}" for i, image in enumerate(self.images, start=1)]
        return "\n".join(lines + ([f"     {self.tie}"] if self.tie else []))

    __repr__ = __str__

    def _repr_html_(self) -> str:
        return gallery_html(self)


@dataclass(repr=False)
class CompareResult:
    """Everything one ``compare`` run produced.

    ``table`` is the ranked :func:`visdiff.rank_scores` table. ``scores_a``/``scores_b`` are
    the (n_a, m)/(n_b, m) score matrices whose columns follow ``table`` row order, and whose
    rows follow ``set_a.items``/``set_b.items``. ``captions_a``/``captions_b`` map image content
    hash to caption (empty when the proposer used none). ``config`` records every setting and
    model id (never API keys); ``timings`` seconds per stage. ``proposal_rounds`` is the
    provenance of the proposals: per round, the images sampled, the captions and exact messages
    sent, the raw answer, the phrases kept and the lines dropped with reasons (empty for
    proposers without rounds).
    """

    table: pd.DataFrame
    proposals: list[str]
    set_a: ImageSet
    set_b: ImageSet
    scores_a: np.ndarray
    scores_b: np.ndarray
    captions_a: dict[str, str] = field(default_factory=dict)
    captions_b: dict[str, str] = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    proposal_rounds: list[dict] = field(default_factory=list)

    def __str__(self) -> str:
        header = (f"CompareResult: {set_summary('A', self.set_a)}, {set_summary('B', self.set_b)}, "
                  f"{len(self.table)} hypotheses ranked")
        return f"{header}\n{self.table.to_string(max_rows=20)}"

    __repr__ = __str__

    def _repr_html_(self) -> str:
        return result_html(self)


def stack_by_set(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Tables of several sets (by name) one after the other, with the name in a first column ``set``."""
    table = pd.concat([t.assign(set=name) for name, t in tables.items()], ignore_index=True)
    return table[["set", *(c for c in table.columns if c != "set")]]


@dataclass(repr=False)
class MultiCompareResult:
    """Each of several image sets described against the union of the others
    (:func:`visdiff.compare_many`).

    ``results`` maps each set's name to its :class:`CompareResult` (A = the set, B = the other
    sets; its ``timings`` and ``proposal_rounds`` are its own). ``config`` records the run's
    settings, the sets' sizes and the images shared between sets; ``timings`` are the whole
    run's seconds per stage (loading and embedding happen once for all sets).
    """

    results: dict[str, CompareResult]
    config: dict = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return list(self.results)

    def __getitem__(self, name: str) -> CompareResult:
        return self.results[name]

    @property
    def table(self) -> pd.DataFrame:
        """Every set's ranked table, one after the other, with the set's name in a first column ``set``."""
        return stack_by_set({name: result.table for name, result in self.results.items()})

    def __str__(self) -> str:
        parts = [f"MultiCompareResult: {len(self.results)} sets, each against the others"]
        parts += [f"\n{name} vs the others:\n{result}" for name, result in self.results.items()]
        return "\n".join(parts)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        return multi_result_html(self)


# Jupyter display: the HTML ``_repr_html_`` returns.


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
