"""Pairwise scorers: a model looks at each (image, hypothesis) pair together, so there is no
image embedding to cache and reuse against any text (the ``vqa`` and ``caption-llm`` rankers).

They fit the scoring stage like this:

- :meth:`PairwiseScorer.prepare` plays the part of image embedding: it readies per-image data
  (a caption, or just a decoding check) and reports the images that cannot be used, so a run
  drops unreadable images before proposing, as with embeddings;
- :class:`PairScores` gives each set an :class:`ImageBlock` in place of an embedding matrix,
  and scores blocks against texts through :meth:`PairwiseScorer.score_pairs`, asking the model
  only for pairs missing from the pair-score cache, keyed by (image content hash, the scorer's
  ``cache_id``: model, prompt and settings, hypothesis).

The resulting (n, m) matrices go through the same statistics as CLIP scores.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from visdiff.cache_root import CacheRoot
from visdiff.errors import BackendError
from visdiff.image_sets import ImageItem, ImageSet
from visdiff.progress import progress_bar

log = logging.getLogger(__name__)

# Bump when the meaning of a cached pair score changes.
PAIR_SCORE_CACHE_VERSION = 1

# An answer with neither yes nor no: no evidence either way.
UNDECIDED = 0.5


def read_yes_no(answer: str) -> float | None:
    """The reference code's reading of an answer: 1 when "yes" is in it, else 0 when "no"
    is, None when neither is.

    >>> read_yes_no("Yes, there is."), read_yes_no("Nope"), read_yes_no("Maybe")
    (1.0, 0.0, None)
    """
    answer = answer.lower()
    return 1.0 if "yes" in answer else 0.0 if "no" in answer else None


def undecided_scores(spec: str, answers: Sequence[float | None]) -> np.ndarray:
    """Scores of answers read by :func:`read_yes_no`, an undecided one (None) as 0.5 (the
    reference drops it, but a table of scores needs one per pair), with a warning counting them."""
    undecided = sum(score is None for score in answers)
    if undecided:
        log.warning("%s: %d of %d answers said neither yes nor no; scored %.1f", spec, undecided, len(answers),
                    UNDECIDED)
    return np.array([UNDECIDED if score is None else score for score in answers], dtype=np.float64)


@runtime_checkable
class PairwiseScorer(Protocol):
    """Scores (image, text) pairs with one model pass over both; scores in [0, 1].

    ``cache_id`` names model, prompt and settings exactly: pair scores are cached under it.
    Building must be cheap (weights load on first use).
    """

    spec: str
    cache_id: str

    def prepare(self, items: Sequence[ImageItem]) -> dict[str, str]:
        """Ready per-image data for ``items``; returns {content hash: reason} of the unusable ones."""

    def score_pairs(self, pairs: Sequence[tuple[ImageItem, str]]) -> np.ndarray:
        """One score per (image, text) pair, in order (batched as the backend can)."""


@dataclass(frozen=True)
class ImageBlock:
    """A set's usable images, standing in for an embedding matrix of a pairwise scorer."""

    image_set: ImageSet

    def __len__(self) -> int:
        return len(self.image_set)


@dataclass
class PairStats:
    """What pairwise scoring did: pairs scored by the model, served from cache; unusable images."""

    scored: int = 0
    cached: int = 0
    failed: int = 0


class PairScores:
    """The pairwise score path of the scoring stage: blocks of usable images, scores cached by pair."""

    def __init__(self, scorer: PairwiseScorer, *, cache: CacheRoot, show_progress: bool | None = None) -> None:
        self.scorer = scorer
        self.cache = cache.texts("pair_scores", version=PAIR_SCORE_CACHE_VERSION)
        self.show_progress = show_progress
        self.stats = PairStats()
        # Images already prepared in this run: content hash -> reason it is unusable ("" if usable).
        self._prepared: dict[str, str] = {}

    def blocks(self, image_sets: Sequence[ImageSet]) -> list[tuple[ImageBlock, ImageSet]]:
        """Per set: its block of usable images and the set without the unusable ones."""
        unique = {item.key: item for s in image_sets for item in s.items if item.key not in self._prepared}
        failed = self.scorer.prepare(list(unique.values())) if unique else {}
        self.stats.failed += len(failed)
        self._prepared.update({key: failed.get(key, "") for key in unique})
        failed = {key: reason for key, reason in self._prepared.items() if reason}
        out = []
        for image_set in image_sets:
            kept = image_set.drop({i: failed[it.key] for i, it in enumerate(image_set.items) if it.key in failed},
                                  warn=False)
            out.append((ImageBlock(kept), kept))
        return out

    def _key(self, item: ImageItem, text: str) -> str:
        return self.cache.key({"scorer": self.scorer.cache_id, "image": item.key, "text": text})

    def score(self, blocks: Sequence[ImageBlock], texts: Sequence[str]) -> list[np.ndarray]:
        """(n_i, m) scores of each block's images against ``texts``; each distinct pair is
        computed once (an image in two sets, a text given twice) and cached."""
        texts = list(texts)
        found: dict[tuple[str, str], float] = {}
        missing: dict[tuple[str, str], tuple[ImageItem, str]] = {}
        for block in blocks:
            for item in block.image_set.items:
                for text in texts:
                    pair = (item.key, text)
                    if pair in found or pair in missing:
                        continue
                    cached = self.cache.get(self._key(item, text)) if self.cache else None
                    if cached is None:
                        missing[pair] = (item, text)
                    else:
                        found[pair] = float(cached)
                        self.stats.cached += 1
        if missing:
            with progress_bar(f"scoring pairs ({self.scorer.spec})", len(missing), enabled=self.show_progress) as bar:
                scores = np.asarray(self.scorer.score_pairs(list(missing.values())), dtype=np.float64)
                if scores.shape != (len(missing),):
                    raise BackendError(f"scorer {self.scorer.spec} returned {scores.shape} scores for {len(missing)} pairs")
                for (pair, (item, text)), score in zip(missing.items(), scores, strict=True):
                    found[pair] = float(score)
                    if self.cache is not None:
                        self.cache.put(self._key(item, text), repr(float(score)))
                self.stats.scored += len(missing)
                bar.advance(len(missing))
        return [np.array([[found[(item.key, text)] for text in texts] for item in block.image_set.items],
                         dtype=np.float32).reshape(len(block), len(texts)) for block in blocks]
