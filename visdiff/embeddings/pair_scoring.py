"""The scoring stage of a pairwise scorer (``vqa``, ``caption-llm``): no embeddings, each
(image, text) pair scored by the model and cached by pair (:class:`~visdiff.scorers.pairwise.PairScores`).

It has the interface of :class:`~visdiff.embeddings.scoring.Scoring` that the pipeline uses
(``embed_sets``, ``score_embeddings``, ``score``, ``finish_text_write``, ``spec``, ``stats``,
``device``); ``embeds_texts`` is
False, so nothing asks it for text embeddings (merging near-duplicate texts needs them).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from visdiff.cache_root import CacheRoot
from visdiff.image_sets import ImageSet
from visdiff.scorers.pairwise import ImageBlock, PairScores, PairStats, PairwiseScorer
from visdiff.timing import Timings


class PairScoring:
    """Scores image sets against texts pair by pair, with one pairwise scorer."""

    embeds_texts = False
    # Pair scores are computed and kept on the host.
    device = torch.device("cpu")

    def __init__(self, scorer: PairwiseScorer, *, cache: CacheRoot, timings: Timings | None = None,
                 show_progress: bool | None = None) -> None:
        self.scorer = scorer
        self.timings = timings or Timings()
        self.pairs = PairScores(scorer, cache=cache, show_progress=show_progress)
        self.stats = self.pairs.stats

    @property
    def spec(self) -> str:
        return self.scorer.spec

    def embed_sets(self, *image_sets: ImageSet) -> list[tuple[ImageBlock, ImageSet]]:
        """Per set: its block of usable images (the part embeddings play) and the set without
        the images the scorer cannot use."""
        with self.timings.stage("embed"):
            return self.pairs.blocks(image_sets)

    def score_embeddings(self, blocks: Sequence[ImageBlock], texts: Sequence[str]) -> list[np.ndarray]:
        """(n_i, m) score matrices of each block against the m ``texts``."""
        with self.timings.stage("score"):
            return self.pairs.score(blocks, list(texts))

    def score(self, image_set: ImageSet, texts: list[str]) -> np.ndarray:
        """(n usable images, m texts) scores of one set."""
        [(block, _)] = self.embed_sets(image_set)
        return self.score_embeddings([block], texts)[0]

    def start_unit(self) -> None:
        """Count from nothing: the next unit of a sweep or benchmark counts its own pairs."""
        self.pairs.stats = self.stats = PairStats()

    def finish_text_write(self) -> None:
        """Nothing to wait for: this stage writes no text embeddings."""
