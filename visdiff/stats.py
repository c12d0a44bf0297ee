"""Statistics that rank hypotheses, vectorised over all hypotheses at once.

Inputs are score matrices ``scores_a`` of shape (n_a, m) and ``scores_b`` of shape (n_b, m):
column j holds every image's score for hypothesis j. A 1-D input is one hypothesis. Every
function returns one value per hypothesis. Names ending in ``_score`` are higher-is-better.
Pure numpy/scipy: no plots, I/O or significance cut-offs here.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from scipy import special
from scipy.stats import false_discovery_control


def _as_matrix(x, name: str) -> np.ndarray:
    if hasattr(x, "detach"):  # torch tensor on any device
        x = x.detach().float().cpu().numpy()
    arr = np.asarray(x)
    # float32 stays float32 (every float32 is exact in float64, and sorting it is ~2x faster);
    # everything else becomes float64. Sums and variances are always taken in float64.
    if arr.dtype != np.float32:
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{name} must hold numbers, got dtype {arr.dtype}") from e
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 1-D or 2-D (images x hypotheses), got shape {arr.shape}")
    if arr.shape[0] < 2:
        raise ValueError(f"{name} needs at least 2 images, got shape {arr.shape}")
    if arr.shape[1] < 1:
        raise ValueError(f"{name} has no hypothesis columns, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite scores")
    return arr


def check_scores(scores_a, scores_b) -> tuple[np.ndarray, np.ndarray]:
    """Validate; return (n_a, m) and (n_b, m) float32 or float64 matrices with the same m."""
    a = _as_matrix(scores_a, "scores_a")
    b = _as_matrix(scores_b, "scores_b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(
            f"scores_a has {a.shape[1]} hypotheses but scores_b has {b.shape[1]} "
            f"(shapes {a.shape} and {b.shape})"
        )
    return a, b


def auroc_score(scores_a, scores_b) -> np.ndarray:
    """Area under the ROC curve for telling A (positive) from B by each hypothesis's score.

    Equals the Mann-Whitney probability P(score_a > score_b) + 0.5 P(tie); ties get average
    ranks, as in ``sklearn.metrics.roc_auc_score``.

    >>> auroc_score([[3.0], [2.0]], [[1.0], [2.0]]).round(3).tolist()
    [0.875]
    """
    a, b = check_scores(scores_a, scores_b)
    return _mann_whitney_u(a, b) / (a.shape[0] * b.shape[0])


# Below this many scores per thread, starting threads costs more than it saves.
_SCORES_PER_THREAD = 1_000_000


def _mann_whitney_u(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """U = sum over a of #(b < a) + 0.5 #(b == a), per column of validated matrices.

    Large inputs are split into column blocks sorted in parallel threads (numpy's sort and
    search release the GIL); each block's result is the same as in one thread.
    """
    n_columns = a.shape[1]
    threads = min(os.cpu_count() or 1, n_columns, (a.size + b.size) // _SCORES_PER_THREAD)
    if threads <= 1:
        return _mann_whitney_u_block(a, b)
    bounds = np.linspace(0, n_columns, threads + 1).astype(int)
    with ThreadPoolExecutor(threads) as pool:
        blocks = pool.map(lambda lo, hi: _mann_whitney_u_block(a[:, lo:hi], b[:, lo:hi]), bounds[:-1], bounds[1:])
        return np.concatenate(list(blocks))


def _mann_whitney_u_block(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Each column of A and of B is sorted once (rows of a contiguous transposed copy); every
    sorted A value is then located in its sorted B column. Counts are integers, so U is
    exact; ties count half, as average ranks do."""
    a_sorted = np.sort(np.ascontiguousarray(a.T), axis=1)
    b_sorted = np.sort(np.ascontiguousarray(b.T), axis=1)
    n_b = b_sorted.shape[1]
    u = np.empty(a_sorted.shape[0], dtype=np.float64)
    for j, (a_col, b_col) in enumerate(zip(a_sorted, b_sorted)):
        below = np.searchsorted(b_col, a_col, side="left")
        # Only A values that also occur in B need the count of equal B values.
        tied = b_col[np.minimum(below, n_b - 1)] == a_col
        ties = 0
        if tied.any():
            ties = int((np.searchsorted(b_col, a_col[tied], side="right") - below[tied]).sum())
        u[j] = int(below.sum()) + ties / 2.0
    return u


def welch_ttest(scores_a, scores_b) -> dict[str, np.ndarray]:
    """Welch's unequal-variance t-test of mean(A) vs mean(B), per hypothesis.

    Returns a dict of arrays (one value per hypothesis): ``t``, ``df``, ``p_two_sided`` (as
    ``scipy.stats.ttest_ind(a, b, equal_var=False)``), ``p_greater`` (one-sided, A > B),
    ``mean_a``, ``mean_b``, and ``effect_size`` (Cohen's d with the average of both variances).
    Hypotheses whose scores are constant in both sets get NaN statistics.

    >>> r = welch_ttest([[1.0], [2.0], [3.0]], [[0.0], [1.0]])
    >>> round(float(r["t"][0]), 4), round(float(r["p_two_sided"][0]), 4)
    (1.964, 0.148)
    """
    a, b = check_scores(scores_a, scores_b)
    n_a, n_b = a.shape[0], b.shape[0]
    mean_a, mean_b = a.mean(axis=0, dtype=np.float64), b.mean(axis=0, dtype=np.float64)
    var_a, var_b = a.var(axis=0, ddof=1, dtype=np.float64), b.var(axis=0, ddof=1, dtype=np.float64)
    se2_a, se2_b = var_a / n_a, var_b / n_b
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (mean_a - mean_b) / np.sqrt(se2_a + se2_b)
        df = (se2_a + se2_b) ** 2 / (se2_a**2 / (n_a - 1) + se2_b**2 / (n_b - 1))
        effect = (mean_a - mean_b) / np.sqrt((var_a + var_b) / 2.0)
    # Student t survival function via the regularised incomplete beta: exact and vectorised.
    p_greater = _t_sf(t, df)
    p_two = np.where(np.isnan(t), np.nan, np.minimum(1.0, 2.0 * _t_sf(np.abs(t), df)))
    return {
        "t": t,
        "df": df,
        "p_two_sided": p_two,
        "p_greater": p_greater,
        "mean_a": mean_a,
        "mean_b": mean_b,
        "effect_size": effect,
    }


def _t_sf(t: np.ndarray, df: np.ndarray) -> np.ndarray:
    return special.stdtr(df, -t)


def bh_qvalues(p_values) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q-values); NaN p-values stay NaN and are not counted.

    >>> bh_qvalues([0.01, 0.04, 0.03]).round(3).tolist()
    [0.03, 0.04, 0.04]
    """
    p = np.asarray(p_values, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError(f"p_values must be 1-D, got shape {p.shape}")
    q = np.full_like(p, np.nan)
    finite = np.isfinite(p)
    if finite.any():
        q[finite] = false_discovery_control(p[finite], method="bh")
    return q
