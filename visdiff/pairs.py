"""Paired sets (``--pair-by COLUMN``): images of A and B that share a key, such as the same
generation prompt and seed given to two diffusion models.

Keys come from a table column (:func:`visdiff.load_image_set` with ``pair_by``; folders have
no column to pair by and are refused there). Rows of A and B with the same key pair up in row
order: the first A row with key k with the first B row with key k, and so on; rows left over,
and rows with an empty key, have no partner. Only what the proposer is shown changes: the
statistics always cover every image of both sets.
"""

from __future__ import annotations

from collections import defaultdict

from visdiff.errors import InputError
from visdiff.image_sets import ImageSet

_SHOWN_KEYS = 5


def paired_positions(set_a: ImageSet, set_b: ImageSet, *, column: str) -> list[tuple[int, int]]:
    """(position in ``set_a``, position in ``set_b``) of every pair, in ``set_a`` order.

    ``InputError`` when either set carries no keys of ``column`` (not loaded with ``pair_by``)
    or when no key is in both sets.
    """
    for image_set in (set_a, set_b):
        if all(item.pair_key is None for item in image_set.items):
            raise InputError(f"set {image_set.name or '?'} has no {column!r} keys to pair by: load both sets from "
                             f"tables with pair_by={column!r} (--pair-by on the command line)")
    partners: dict[str, list[int]] = defaultdict(list)
    for position, item in enumerate(set_b.items):
        if item.pair_key is not None:
            partners[item.pair_key].append(position)
    taken: dict[str, int] = defaultdict(int)
    pairs = []
    for position, item in enumerate(set_a.items):
        key = item.pair_key
        if key is not None and taken[key] < len(partners.get(key, ())):
            pairs.append((position, partners[key][taken[key]]))
            taken[key] += 1
    if not pairs:
        raise InputError(f"no {column!r} key is in both set {set_a.name or 'A'} and set {set_b.name or 'B'} "
                         f"(e.g. {_some_keys(set_a)} vs {_some_keys(set_b)}): nothing to pair")
    return pairs


def _some_keys(image_set: ImageSet) -> list[str]:
    return sorted({item.pair_key for item in image_set.items if item.pair_key is not None})[:_SHOWN_KEYS]
