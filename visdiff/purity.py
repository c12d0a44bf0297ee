"""Set purity (paper Fig. 4): a fraction of set A traded for as many images of set B, to see
how a difference fades as the sets mix (``--purity`` on ``compare`` and ``bench``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import numpy as np

from visdiff.errors import InputError

T = TypeVar("T")


def trade_for_purity(set_a: Sequence[T], set_b: Sequence[T], purity: float,
                     rng: np.random.Generator) -> tuple[list[T], list[T], int]:
    """``k = round((1 - purity) * len(set_a))`` random members of A trade places with ``k``
    random members of B: both keep their sizes and every member stays in exactly one set (the
    reference code duplicated images instead). ``k`` is capped at ``len(set_b)``; ``round``
    rather than the reference's ``int``: ``int((1 - 0.9) * 100)`` is 9, not 10. Below 0.5 the
    sets trade roles. Returns the new A, the new B and ``k``.

    >>> trade_for_purity("abcd", "wxyz", 0.5, np.random.default_rng(0))[2]
    2
    """
    if not 0.0 <= purity <= 1.0:
        raise InputError(f"purity must be between 0 and 1, got {purity}")
    new_a, new_b = list(set_a), list(set_b)
    k = min(int(round((1.0 - purity) * len(set_a))), len(set_b))
    if k:
        for i, j in zip(rng.choice(len(set_a), size=k, replace=False), rng.choice(len(set_b), size=k, replace=False)):
            new_a[i], new_b[j] = set_b[j], set_a[i]
    return new_a, new_b, k
