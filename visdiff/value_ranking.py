"""Rank hypotheses by how their scores follow a value per image (``--score-col``): pure tables.

One set, a number per image (model confidence, loss, a rating): each hypothesis gets
Spearman's rho between its image scores and the value, with its 95% interval, the two-sided
p-value of the test whose statistic rho is, and Benjamini-Hochberg q-values; rows are ranked
by |rho|, and ``more_true_of`` says which end of the value the hypothesis describes, so the
flag and the order never disagree. Computing the scores is the scoring stage's job.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from visdiff import stats
from visdiff.correlation_stats import spearman_stats
from visdiff.errors import InputError
from visdiff.ranking import DEFAULT_ALPHA

VALUE_COLUMNS = [
    "hypothesis", "rho", "rho_low", "rho_high", "p_rho", "q_value", "significant", "more_true_of",
    "mean_score", "constant",
]


def rank_by_value(scores, values, hypotheses: Sequence[str], *, alpha: float = DEFAULT_ALPHA) -> pd.DataFrame:
    """Rank hypotheses by |Spearman's rho| between their scores and ``values``.

    Parameters
    ----------
    scores : array-like of shape (n, m)
        Score of every image for each of the m hypotheses (a torch tensor is copied to the host).
    values : array-like of shape (n,)
        The value of each image.
    hypotheses : sequence of m str
    alpha : float
        False-discovery rate for the ``significant`` flag (q-value < alpha).

    Returns
    -------
    pandas.DataFrame sorted by |rho| (descending; constant rows last), columns ``hypothesis,
    rho, rho_low, rho_high`` (95% interval, :mod:`visdiff.correlation_stats`), ``p_rho``
    (two-sided, :func:`scipy.stats.spearmanr`'s), ``q_value`` (BH over ``p_rho``; a constant
    row counts as p = 1), ``significant``, ``more_true_of`` ("high values", "low values" or
    "neither"), ``mean_score`` and ``constant``.
    """
    if not 0 < alpha < 1:
        raise InputError(f"alpha must be in (0, 1), got {alpha}")
    if hasattr(scores, "detach"):
        scores = scores.detach().float().cpu().numpy()
    scores = np.asarray(scores, dtype=np.float64)
    scores = scores[:, None] if scores.ndim == 1 else scores
    found = spearman_stats(scores, values)
    hypotheses = [hypotheses] if isinstance(hypotheses, str) else list(hypotheses)
    if len(hypotheses) != len(found["rho"]):
        raise InputError(f"{len(hypotheses)} hypotheses for {len(found['rho'])} score columns")
    # A constant column says nothing: p = 1 in the q-values, as rank_scores does.
    p_rho = np.where(found["constant"], 1.0, found["p_value"])
    q_value = stats.bh_qvalues(p_rho)
    rho = found["rho"]
    order = np.argsort(-np.nan_to_num(np.abs(rho), nan=-1.0), kind="stable")
    table = pd.DataFrame({
        "hypothesis": [hypotheses[i] for i in order],
        "rho": rho[order],
        "rho_low": found["rho_low"][order],
        "rho_high": found["rho_high"][order],
        "p_rho": p_rho[order],
        "q_value": q_value[order],
        "significant": q_value[order] < alpha,
        "more_true_of": np.where(rho[order] > 0, "high values", np.where(rho[order] < 0, "low values", "neither")),
        "mean_score": scores.mean(axis=0)[order],
        "constant": found["constant"][order],
    })
    table.attrs.update(alpha=alpha, ranked_by="spearman")
    return table
