"""Which images of A are least like B: the ones a rare difference (``--rare``) hides in.

A uniform sample of 20 captions rarely holds an image from a 2% tail of A. The images of A
whose nearest neighbour in B (cosine similarity of their feature rows) is farthest are the
ones B has nothing like; the proposer is shown those. The features are the caller's choice
(:mod:`visdiff.rare` uses concept profiles).
"""

from __future__ import annotations

import numpy as np
import torch

# Rows of A compared with all of B at a time: bounds the (rows, n_b) similarity block.
_ROWS_PER_BLOCK = 4096


def nearest_distance(features_a: torch.Tensor, features_b: torch.Tensor) -> np.ndarray:
    """(n_a,) cosine distance (1 - similarity) from each row of A to its nearest row of B."""
    a = torch.nn.functional.normalize(features_a.float(), dim=1)
    b = torch.nn.functional.normalize(features_b.float(), dim=1)
    nearest = [(block @ b.T).amax(dim=1) for block in a.split(_ROWS_PER_BLOCK)]
    return (1.0 - torch.cat(nearest)).cpu().numpy().astype(np.float64)


def least_like(features_a: torch.Tensor, features_b: torch.Tensor, k: int) -> list[int]:
    """Positions of the ``k`` rows of A farthest from their nearest row of B, farthest first
    (ties in set order)."""
    distance = nearest_distance(features_a, features_b)
    return np.argsort(-distance, kind="stable")[:k].tolist()
