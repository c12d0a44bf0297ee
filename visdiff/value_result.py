"""What a comparison by value (``--score-col``, ``score=``) returns: one set, a value per image."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from visdiff.image_sets import ImageSet


@dataclass(repr=False)
class ValueResult:
    """Everything one comparison by value produced.

    ``table`` is the :func:`visdiff.value_ranking.rank_by_value` table (ranked by |rho|).
    ``values`` holds each image's value and ``scores`` the (n, m) scores, rows following
    ``image_set.items`` and columns ``table``'s rows. ``captions`` map content hash to caption;
    ``config`` records every setting (the quantile the proposer read, the top and bottom
    images' hashes); ``timings`` seconds per stage; ``proposal_rounds`` as in
    :class:`~visdiff.result.CompareResult`.
    """

    table: pd.DataFrame
    proposals: list[str]
    image_set: ImageSet
    values: np.ndarray
    scores: np.ndarray
    captions: dict[str, str] = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    proposal_rounds: list[dict] = field(default_factory=list)

    def __str__(self) -> str:
        header = (f"ValueResult: {self.image_set.name or 'set'} ({len(self.image_set)} images, value "
                  f"{self.values.min():.3g} to {self.values.max():.3g}), {len(self.table)} hypotheses ranked by |rho|")
        return f"{header}\n{self.table.to_string(max_rows=20)}"

    __repr__ = __str__

    def _repr_html_(self) -> str:
        return self.table.to_html(max_rows=20, escape=True)
