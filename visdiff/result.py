"""Result types shared by the pipeline, the CLI, reports and the benchmark.

Each shows itself as rich HTML in Jupyter (``_repr_html_``, rendered by
:mod:`visdiff.report.notebook` with the report's escaping) and as plain text elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from visdiff.image_sets import ImageSet

if TYPE_CHECKING:  # the report package imports this module
    from visdiff.report.evidence import EvidenceImage, Tie


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
        from visdiff.report.notebook import ranking_html

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
        from visdiff.report.notebook import gallery_html

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
        from visdiff.report.notebook import result_html

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
        from visdiff.report.notebook import multi_result_html

        return multi_result_html(self)
