"""Held-out statistics: the proposer sees only a proposal split of each set, and the ranking
statistics come from the rest, so a hypothesis tailored to the images the proposer saw cannot
look significant by selection.

The split is per set (stratified), deterministic and independent of file order: the distinct
images of a set are ordered by the SHA-256 of ``seed`` and their content hash, and the first
``round(fraction * n)`` are held out (copies of one image stay together).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

from visdiff.errors import InputError
from visdiff.image_sets import ImageSet

# Each split of each set keeps at least this many images: the proposer needs images to compare,
# the statistics two per set.
MIN_SPLIT_IMAGES = 2
SPLITS = ("proposal", "held_out")


def split_positions(keys: Sequence[str], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Positions of the proposal images and of the held-out images among ``keys`` (content hashes)."""
    distinct = sorted(set(keys), key=lambda key: hashlib.sha256(f"{seed}:{key}".encode()).hexdigest())
    held = set(distinct[: math.floor(fraction * len(distinct) + 0.5)])
    return ([i for i, key in enumerate(keys) if key not in held], [i for i, key in enumerate(keys) if key in held])


@dataclass(frozen=True)
class Holdout:
    """The proposal and held-out positions of each set (``"a"``, ``"b"``) of one comparison."""

    fraction: float
    seed: int
    proposal: dict[str, list[int]]
    held_out: dict[str, list[int]]

    @classmethod
    def split(cls, sets: dict[str, ImageSet], fraction: float, seed: int) -> Holdout:
        """Split every set; ``InputError`` when a split of a set would keep fewer than
        :data:`MIN_SPLIT_IMAGES` images."""
        proposal, held_out = {}, {}
        for side, image_set in sets.items():
            proposal[side], held_out[side] = split_positions(image_set.keys, fraction, seed)
            if min(len(proposal[side]), len(held_out[side])) < MIN_SPLIT_IMAGES:
                # Nearer 0.5 helps only a set that holds enough images for two splits.
                remedy = ("use a fraction nearer 0.5 or more images" if len(image_set) >= 2 * MIN_SPLIT_IMAGES
                          else f"--holdout needs at least {2 * MIN_SPLIT_IMAGES} images per set")
                raise InputError(
                    f"--holdout {fraction:g} splits set {side.upper()} ({len(image_set)} images) into "
                    f"{len(proposal[side])} proposal and {len(held_out[side])} held-out images; each split needs at "
                    f"least {MIN_SPLIT_IMAGES}: {remedy}")
        return cls(fraction, seed, proposal, held_out)

    def proposal_sets(self, sets: dict[str, ImageSet]) -> dict[str, ImageSet]:
        """The proposal split of each set: what the proposer sees."""
        return {side: image_set.subset(self.proposal[side]) for side, image_set in sets.items()}

    def record(self, sets: dict[str, ImageSet]) -> dict:
        """What results keep: fraction, seed, and per set the counts and the content hashes of
        the images the proposer saw."""
        return {"fraction": self.fraction, "seed": self.seed, "sets": {
            side: {"n_proposal": len(self.proposal[side]), "n_held_out": len(self.held_out[side]),
                   "proposal_images": [image_set.keys[i] for i in self.proposal[side]]}
            for side, image_set in sets.items()}}

    def summary(self) -> dict:
        """Fraction, seed and counts (for table metadata and headlines)."""
        return {"fraction": self.fraction, "seed": self.seed,
                **{f"n_{split}_{side}": len(getattr(self, split)[side]) for split in SPLITS for side in self.proposal}}
