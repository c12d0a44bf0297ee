"""A tail test for rare differences (``--rare``), vectorised over all hypotheses at once.

When 2% of A shows a concept, AUROC moves by about 0.01: the images that carry the difference
are lost among the rest. What they do show is the *tail*: they score above nearly all of B.
The statistic is the number of images of A scoring above B's upper ``tail`` quantile, taken
as the r-th highest score of B (r = 1 + floor(tail * n_b); with tail 0.01 and up to 199 images
of B, B's highest). Under the null that A and B are exchangeable, that count has the negative
hypergeometric distribution (draw the pooled images from the highest down; it counts the A
drawn before the r-th B), so its one-sided p-value is exact for untied scores; an A score
equal to the threshold is not counted, which makes the test conservative under ties.

Chosen over a binomial test against the fixed share ``tail`` (it ignores that the threshold
is estimated from B, and its false-positive rate drifts above alpha for small B) and over
Fisher's exact test at a pooled quantile (the pooled threshold moves with A's own tail, which
then hides the few images that carry the difference). Pure numpy/scipy: no cut-offs here.
"""

from __future__ import annotations

import math

import numpy as np

from visdiff.stats import check_scores

DEFAULT_TAIL = 0.01


def tail_rank(n_b: int, tail: float = DEFAULT_TAIL) -> int:
    """The rank r (1 = highest) of B's score taken as its upper-``tail`` threshold."""
    if not 0 < tail < 1:
        raise ValueError(f"tail must be in (0, 1), got {tail}")
    return 1 + math.floor(tail * n_b)


def exceedance_survival(n_a: int, n_b: int, r: int) -> np.ndarray:
    """P(X >= k) for k = 0..n_a + 1, X the number of A above the r-th highest of B under the
    null: :data:`scipy.stats.nhypergeom` (n_a + n_b images, n_a of A, until r of B are drawn).

    >>> exceedance_survival(2, 2, 1).round(4).tolist()  # the first of 4 draws is A half the time
    [1.0, 0.5, 0.1667, 0.0]
    """
    from scipy.stats import nhypergeom  # imported on first use: not paid by the CLI's start

    return np.clip(nhypergeom.sf(np.arange(-1, n_a + 1), n_a + n_b, n_a, r), 0.0, 1.0)


def tail_exceedance_test(scores_a, scores_b, *, tail: float = DEFAULT_TAIL) -> dict[str, np.ndarray]:
    """How many images of A score above B's upper ``tail`` quantile, per hypothesis, and the
    exact one-sided p-value of that count (A exchangeable with B).

    Parameters
    ----------
    scores_a, scores_b : array-like of shape (n_a, m) and (n_b, m)
    tail : float in (0, 1)
        B's threshold is its r-th highest score, r = 1 + floor(tail * n_b).

    Returns
    -------
    dict of ndarray of shape (m,)
        ``tail_count`` (A strictly above the threshold), ``tail_share`` (that over n_a),
        ``tail_expected`` (the share expected under the null, r / (n_b + 1)),
        ``tail_threshold`` and ``p_tail`` (P(count >= observed) under the null).

    >>> out = tail_exceedance_test([[5.0], [4.0], [0.0]], [[1.0], [0.5], [0.2]])
    >>> out["tail_count"].tolist(), out["p_tail"].round(3).tolist()
    ([2], [0.2])
    """
    a, b = check_scores(scores_a, scores_b)
    n_a, n_b = a.shape[0], b.shape[0]
    r = tail_rank(n_b, tail)
    threshold = -np.sort(-b, axis=0)[r - 1]
    count = (a > threshold).sum(axis=0)
    return {
        "tail_count": count,
        "tail_share": count / n_a,
        "tail_expected": np.full(a.shape[1], r / (n_b + 1)),
        "tail_threshold": threshold.astype(np.float64),
        "p_tail": exceedance_survival(n_a, n_b, r)[count],
    }
