"""Result types shared by the pipeline, the CLI, reports and the benchmark."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from visdiff.image_sets import ImageSet


@dataclass
class CompareResult:
    """Everything one ``compare`` run produced.

    ``table`` is the ranked :func:`visdiff.rank_scores` table. ``scores_a``/``scores_b`` are
    the (n_a, m)/(n_b, m) score matrices whose columns follow ``table`` row order, and whose
    rows follow ``set_a.items``/``set_b.items``. ``captions_a``/``captions_b`` map image content
    hash to caption (empty when the proposer used none). ``config`` records every setting and
    model id (never API keys); ``timings`` seconds per stage. ``proposal_rounds`` is the
    provenance of the proposals: per round, the images sampled, the captions and exact messages
    sent, the raw answer, the phrases kept and the lines dropped with reasons (empty for
    proposers without rounds).
    """

    table: pd.DataFrame
    proposals: list[str]
    set_a: ImageSet
    set_b: ImageSet
    scores_a: np.ndarray
    scores_b: np.ndarray
    captions_a: dict[str, str] = field(default_factory=dict)
    captions_b: dict[str, str] = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    proposal_rounds: list[dict] = field(default_factory=list)
