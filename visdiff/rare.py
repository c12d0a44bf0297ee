"""``--rare``: what the proposer is shown of each set when a difference covers a few images.

A uniform sample of 20 captions rarely holds an image from a 2% tail of A, so the proposer is
shown the images of A least like B (:func:`visdiff.outliers.least_like`): ``ceil(fraction *
n)`` of them, at least :data:`MIN_SHOWN`. Likeness is the cosine of *concept profiles*: each
image's scores over the default vocabulary (every WordNet concept over the ImageNet classes
and the photographic properties, :func:`visdiff.proposers.vocabulary.default_vocabulary`),
centred over both sets. Two photos of different dog breeds share "dogs", "canines" and
"mammals" there, where the offline scorer's own embedding (class probabilities) puts them
almost orthogonal, so its nearest neighbours say little (benchmarks/bench_rare.py counts the
planted images each way finds; figures in benchmarks/README.md).
The ranking is then by the tail test (:mod:`visdiff.rare_ranking`).
"""

from __future__ import annotations

import math

import torch

from visdiff.embeddings.scoring import Scoring
from visdiff.errors import InputError
from visdiff.options import RunOptions
from visdiff.proposers.vocabulary import default_vocabulary

# Fewest images shown: a proposer needs a few to see what they share.
MIN_SHOWN = 5


def shown_count(n: int, options: RunOptions) -> int:
    """How many images of a set of ``n`` the proposer is shown under ``--rare``."""
    return min(n, max(MIN_SHOWN, math.ceil(options.rare * n)))


def concept_profiles(scoring: Scoring, embeddings: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Per set, each image's scores over the default vocabulary, centred over all the sets' images."""
    if not all(isinstance(block, torch.Tensor) for block in embeddings.values()):
        raise InputError("--rare finds the images least like the other set from the scorer's image embeddings; "
                         "a pairwise scorer (vqa, caption-llm) has none: use an embedding scorer")
    text = scoring.encode_texts(list(default_vocabulary().phrases))
    scores = {side: scoring.scorer.score(block.float(), text).float() for side, block in embeddings.items()}
    centre = torch.cat(list(scores.values())).mean(dim=0)
    return {side: block - centre for side, block in scores.items()}
