"""Set purity (paper Fig. 4): a pair with a fraction of set A traded for images of set B."""

from __future__ import annotations

import zlib
from dataclasses import replace
from pathlib import Path  # noqa: F401 - the doctest builds paths

import numpy as np

from visdiff.errors import InputError
from visdiffbench.data import BenchPair


def apply_purity(pair: BenchPair, purity: float, *, seed: int = 0) -> tuple[BenchPair, int]:
    """Swap a fraction ``1 - purity`` of set A with as many images of set B (paper Fig. 4).

    ``k = round((1 - purity) * len(images_a))`` images of A, chosen at random, trade places
    with ``k`` random images of B: both sets keep their sizes and every image stays in exactly
    one set (the reference code duplicated images instead). ``k`` is capped at ``len(images_b)``.
    The choice depends on ``seed`` and the pair id, so it is reproducible and differs by pair.
    Below 0.5 the sets trade roles (B then holds more of A's kind than A does). ``round`` rather
    than upstream's ``int``: ``int((1 - 0.9) * 100)`` is 9, not 10.

    Returns the new pair and ``k``.

    >>> p = BenchPair("x", "easy", "a", "b", "", tuple(Path(f"a{i}") for i in range(4)), tuple(Path(f"b{i}") for i in range(4)))
    >>> mixed, k = apply_purity(p, 0.5, seed=0)
    >>> k, sorted(map(str, mixed.images_a + mixed.images_b)) == sorted(map(str, p.images_a + p.images_b))
    (2, True)
    """
    if not 0.0 <= purity <= 1.0:
        raise InputError(f"purity must be between 0 and 1, got {purity}")
    k = min(int(round((1.0 - purity) * len(pair.images_a))), len(pair.images_b))
    if k == 0:
        return pair, 0
    rng = np.random.default_rng([seed, zlib.crc32(pair.id.encode("utf-8"))])
    pos_a = rng.choice(len(pair.images_a), size=k, replace=False)
    pos_b = rng.choice(len(pair.images_b), size=k, replace=False)
    images_a, images_b = list(pair.images_a), list(pair.images_b)
    for i, j in zip(pos_a, pos_b):
        images_a[i], images_b[j] = pair.images_b[j], pair.images_a[i]
    return replace(pair, images_a=tuple(images_a), images_b=tuple(images_b)), k
