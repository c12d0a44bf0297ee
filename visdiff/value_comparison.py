"""A comparison of one image set against a value per image (``score=``, ``--score-col``).

Model confidence, loss, an aesthetic score or a human rating is continuous; binning it into
two groups throws information away. Here the proposer reads the images at the two ends of the
value (the top and bottom :data:`VALUE_QUANTILE` of it, as set A and set B: refinement works
on them as in a two-set comparison), and every hypothesis is then ranked over all images by
Spearman's rho between its scores and the value (:func:`visdiff.value_ranking.rank_by_value`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import asdict

import numpy as np
import torch

from visdiff.comparison import Comparison
from visdiff.errors import InputError
from visdiff.image_sets import ImageSet
from visdiff.options import RunOptions
from visdiff.ranking import clean_hypotheses, dedupe_phrases
from visdiff.refine import RefinementFailed
from visdiff.result import RankedTable
from visdiff.sources import load_image_set
from visdiff.stages import RunStages
from visdiff.value_ranking import rank_by_value
from visdiff.value_result import ValueResult

# The share of images at each end of the value that the proposer reads: a quarter keeps half
# the set in view, where the difference is plainest, with enough images to sample from.
VALUE_QUANTILE = 0.25
MIN_IMAGES = 8  # two at each end, with the middle between them


def parse_value(text: str | None, column: str, label: str) -> float:
    """A table cell as a finite number, or ``InputError`` naming the column, the row and the cell."""
    try:
        value = float(text) if text is not None else math.nan
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise InputError(f"score column {column!r} must hold a finite number in every row; {label} has {text!r}")
    return value


def load_with_values(images, score, stages: RunStages) -> tuple[ImageSet, dict[tuple[str, str], float]]:
    """The set and each image's value keyed by (content hash, source): ``score`` names a column
    of the table ``images`` (read like ``--pair-by`` reads its key column), or gives one number
    per image of a list of paths or PIL images, in order."""
    options = stages.options
    hashes = stages.cache.file_hashes()
    if isinstance(score, str):
        image_set = load_image_set(images, name=options.name_a, hashes=hashes, pair_by=score)
        return image_set, dict(zip(((it.key, it.source) for it in image_set.items), column_values(image_set, score)))
    if isinstance(images, (str, os.PathLike)):
        raise InputError("score= as numbers goes with a list of images in the same order; for a folder or a "
                         "table give a table and the name of its score column (score='column', --score-col)")
    values = _finite_values(score)
    image_set = load_image_set(images, name=options.name_a, hashes=hashes)
    if image_set.skipped or len(image_set) != len(values):
        raise InputError(f"score= gives {len(values)} values for {len(image_set) + len(image_set.skipped)} images, "
                         f"{len(image_set.skipped)} of them unreadable: give one value per readable image")
    found: dict[tuple[str, str], float] = {}
    for item, value in zip(image_set.items, values):
        if found.setdefault((item.key, item.source), value) != value:
            raise InputError(f"{item.source} is given twice with different values ({found[(item.key, item.source)]} "
                             f"and {value})")
    return image_set, found


def column_values(image_set: ImageSet, column: str) -> list[float]:
    """Each image's value of ``column`` (loaded as the set's pair key, ``pair_by=column``)."""
    return [parse_value(item.pair_key, column, item.source) for item in image_set.items]


def _finite_values(score) -> np.ndarray:
    """``score`` as a 1-D float array of finite numbers, or ``InputError`` saying what it takes."""
    try:
        values = np.asarray(score, dtype=np.float64)
    except (TypeError, ValueError):
        values = None
    if values is None or values.ndim != 1 or not np.isfinite(values).all():
        raise InputError("score= must be one finite number per image (or a table column's name), "
                         f"got {type(score).__name__}")
    return values


def check_options(options: RunOptions) -> None:
    """Options for two sets are refused: a comparison by value has one set and its values."""
    for name in ("holdout", "pair_by", "rare"):
        if getattr(options, name):
            raise InputError(f"{name} compares two sets; a comparison by value has one set and its values")


def end_positions(values: np.ndarray) -> tuple[list[int], list[int]]:
    """Positions of the images with the highest and the lowest :data:`VALUE_QUANTILE` of the
    values, highest (lowest) first; ties in set order."""
    k = max(2, round(VALUE_QUANTILE * len(values)))
    return np.argsort(-values, kind="stable")[:k].tolist(), np.argsort(values, kind="stable")[:k].tolist()


class ValueComparison(Comparison):
    """One image set with a value per image, ready to propose and rank by Spearman's rho.

    Parameters
    ----------
    images : table, list of paths or PIL images, or ImageSet
        Anything :func:`visdiff.load_image_set` takes; at least :data:`MIN_IMAGES` readable images.
    score : str or sequence of float
        The name of the table's column holding each image's value, or one value per image of
        a list, in order.
    options, **keywords
        Run options as for :func:`visdiff.compare` (``holdout``, ``pair_by`` and ``rare`` are
        for two sets and refused).

    As a :class:`~visdiff.comparison.Comparison`, set A is the top :data:`VALUE_QUANTILE` of the
    value and set B the bottom one (what the proposer reads and refinement ranks); :meth:`rank`
    and :meth:`compare` rank over all images by rho.
    """

    def __init__(self, images, score, options: RunOptions | None = None, **keywords) -> None:
        self._load_values(RunStages.from_keywords(options, keywords, proposing=True), images, score)

    @classmethod
    def of_stages(cls, stages: RunStages, images, score) -> ValueComparison:  # type: ignore[override]
        comparison = cls.__new__(cls)
        comparison._load_values(stages, images, score)
        return comparison

    def _load_values(self, stages: RunStages, images, score) -> None:
        check_options(stages.options)
        with stages.timings.stage("load_images"):
            image_set, by_item = load_with_values(images, score, stages)
        image_set = image_set.require(MIN_IMAGES)
        image_set.warn_of_repeats()
        [(embeddings, kept)] = stages.scoring.embed_sets(image_set)
        kept = kept.require(MIN_IMAGES)
        if not isinstance(embeddings, torch.Tensor):
            raise InputError("a comparison by value needs an embedding scorer; a pairwise scorer (vqa, caption-llm) "
                             "is not supported")
        self.image_set = kept
        self.values = np.array([by_item[(it.key, it.source)] for it in kept.items])
        if np.ptp(self.values) == 0:
            raise InputError(f"every image has the value {self.values[0]:g}: nothing to correlate with")
        self._all_embeddings = embeddings
        self.top, self.bottom = end_positions(self.values)
        name = kept.name or "images"
        ends = [(embeddings[positions], ImageSet(tuple(kept.items[i] for i in positions), name=f"{name}: {end}"))
                for positions, end in ((self.top, "highest values"), (self.bottom, "lowest values"))]
        self._keep(stages, *ends)

    def value_scores(self, hypotheses: Sequence[str]) -> torch.Tensor:
        """(n, m) scores of every image against every hypothesis, float32 on the device."""
        [scores] = self._score_blocks([self._all_embeddings], list(hypotheses))
        return scores

    def rank(self, hypotheses: Sequence[str], *, alpha: float | None = None) -> RankedTable:
        """Rank ``hypotheses`` by |Spearman's rho| of their scores with the value, over all images."""
        hypotheses = clean_hypotheses(hypotheses)
        scores = self.value_scores(hypotheses)
        with self.stages.timings.stage("rank"):
            table = rank_by_value(scores, self.values, hypotheses, alpha=self.options.alpha if alpha is None else alpha)
        table.attrs.update(scorer=self.stages.scoring.spec, set=self.image_set.name, n=len(self.image_set))
        return RankedTable.of(table)

    def compare(self) -> ValueResult:  # type: ignore[override]
        """Propose over the top end (and the bottom end with ``both_directions``), refine,
        and rank every phrase by |rho| over all images."""
        rounds_before = len(self.stages.proposal_rounds)
        proposals, refine_stop = self.proposals()
        hypotheses = dedupe_phrases([h for phrases in proposals.values() for h in phrases])
        scores = self.value_scores(hypotheses)
        with self.stages.timings.stage("rank"):
            table = rank_by_value(scores, self.values, hypotheses, alpha=self.options.alpha)
            position = {h: i for i, h in enumerate(hypotheses)}
            columns = [position[h] for h in table["hypothesis"]]
            host = scores.float().cpu().numpy()
            table, columns = self._merge(table, columns, host[:, columns])
        timings = self.timings
        keys = set(self.image_set.keys)
        config = {
            **self.stages.describe(),
            "n": len(self.image_set),
            "skipped": [asdict(s) for s in self.image_set.skipped],
            "n_proposals": {direction: len(phrases) for direction, phrases in proposals.items()},
            "by_value": {"quantile": VALUE_QUANTILE, "statistic": "spearman",
                         "interval": "Fisher z, Bonett-Wright standard error",
                         "top": [self.image_set.keys[i] for i in self.top],
                         "bottom": [self.image_set.keys[i] for i in self.bottom]},
        }
        if refine_stop is not None:
            config["refine_stopped"] = refine_stop.record()
        result = ValueResult(
            table=table, proposals=hypotheses, image_set=self.image_set, values=self.values,
            scores=host[:, columns],
            captions={k: c for k, c in self.stages.captioning.captions.items() if k in keys},
            config=config, timings={**timings, "total": sum(timings.values())},
            proposal_rounds=self.stages.proposal_rounds[rounds_before:],
        )
        if refine_stop is not None:
            raise RefinementFailed(refine_stop, result)
        return result

    def __repr__(self) -> str:
        return (f"ValueComparison({len(self.image_set)} images, value {self.values.min():.3g} to "
                f"{self.values.max():.3g}, scorer {self.stages.scoring.spec!r} on {self.device})")
