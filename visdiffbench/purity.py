"""Set purity (paper Fig. 4): a pair with a fraction of set A traded for images of set B."""

from __future__ import annotations

import zlib
from dataclasses import replace
from pathlib import Path  # noqa: F401 - the doctest builds paths

import numpy as np

from visdiff.purity import trade_for_purity
from visdiffbench.data import BenchPair


def apply_purity(pair: BenchPair, purity: float, *, seed: int = 0) -> tuple[BenchPair, int]:
    """Swap a fraction ``1 - purity`` of set A with as many images of set B (paper Fig. 4).

    :func:`visdiff.purity.trade_for_purity` on the pair's images; the choice depends on ``seed``
    and the pair id, so it is reproducible and differs by pair.

    Returns the new pair and ``k``.

    >>> p = BenchPair("x", "easy", "a", "b", "", tuple(Path(f"a{i}") for i in range(4)), tuple(Path(f"b{i}") for i in range(4)))
    >>> mixed, k = apply_purity(p, 0.5, seed=0)
    >>> k, sorted(map(str, mixed.images_a + mixed.images_b)) == sorted(map(str, p.images_a + p.images_b))
    (2, True)
    """
    rng = np.random.default_rng([seed, zlib.crc32(pair.id.encode("utf-8"))])
    images_a, images_b, k = trade_for_purity(pair.images_a, pair.images_b, purity, rng)
    return (replace(pair, images_a=tuple(images_a), images_b=tuple(images_b)) if k else pair), k
