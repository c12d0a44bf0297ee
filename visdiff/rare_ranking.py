"""Rank hypotheses by the tail of A above B (``--rare``): pure tables.

The :func:`visdiff.ranking.rank_directions` table gains the tail test of
:mod:`visdiff.tail_stats` (``tail_count``, ``tail_share``, ``tail_expected``, ``p_tail``,
``q_tail``: BH per direction, ``significant_tail``: q_tail < alpha) and is re-ranked by it:
p_tail, then tail_share, then AUROC. ``significant`` stays the Mann-Whitney flag beside its
own q-value, so no column says one test's verdict next to another test's q.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from visdiff import stats
from visdiff.ranking import DEFAULT_ALPHA, rank_directions
from visdiff.tail_stats import DEFAULT_TAIL, tail_exceedance_test

TAIL_COLUMNS = ("tail_count", "tail_share", "tail_expected", "p_tail", "q_tail")
TAIL_FLAG = "significant_tail"


def rank_rare(scores_a, scores_b, proposals: dict[str, list[str]], *, alpha: float = DEFAULT_ALPHA,
              tail: float = DEFAULT_TAIL) -> tuple[pd.DataFrame, list[int]]:
    """:func:`~visdiff.ranking.rank_directions` ranked by the tail test instead of AUROC.

    Returns the table (rows of each direction ranked by ``p_tail``, then ``tail_share``
    descending, then ``auroc``) and the score-column order of its rows. On ``"B"`` rows the
    tail is B's above A's threshold.
    """
    table, columns = rank_directions(scores_a, scores_b, proposals, alpha=alpha)
    a, b = stats.check_scores(scores_a, scores_b)
    directions = table["direction"].to_numpy() if "direction" in table.columns else np.full(len(table), "A")
    found = {name: np.zeros(len(table)) for name in TAIL_COLUMNS}
    order = []
    for direction in dict.fromkeys(directions):
        rows = np.flatnonzero(directions == direction)
        block = [columns[i] for i in rows]
        over, other = (b, a) if direction == "B" else (a, b)
        tested = tail_exceedance_test(over[:, block], other[:, block], tail=tail)
        tested["q_tail"] = stats.bh_qvalues(tested["p_tail"])
        for name in TAIL_COLUMNS:
            found[name][rows] = tested[name]
        # np.lexsort sorts by its last key first.
        order += rows[np.lexsort((-table["auroc"].to_numpy()[rows], -tested["tail_share"], tested["p_tail"]))].tolist()
    for name in TAIL_COLUMNS:
        table[name] = found[name].astype(int) if name == "tail_count" else found[name]
    table[TAIL_FLAG] = table["q_tail"] < alpha
    table = table.iloc[order].reset_index(drop=True)
    table.attrs.update(alpha=alpha, ranked_by="tail", tail=tail)
    return table, [columns[i] for i in order]
