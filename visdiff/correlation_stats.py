"""Spearman's rank correlation between each hypothesis's image scores and a value per image,
vectorised over all hypotheses at once (``--score-col``: one set, a number per image).

``scores`` is an (n, m) matrix, column j every image's score for hypothesis j; ``values`` the
n numbers. Ranks are averaged over ties, the p-value is two-sided with Student's t on n - 2
degrees of freedom, exactly as :func:`scipy.stats.spearmanr` computes them. The 95% interval
is Fisher's z with Bonett and Wright's (2000) standard error sqrt((1 + rho^2 / 2) / (n - 3)):
the plain 1 / sqrt(n - 3) is for Pearson's r and too narrow for Spearman's rho.
Pure numpy/scipy: no plots, I/O or significance cut-offs here.
"""

from __future__ import annotations

import numpy as np

from visdiff.score_summary import require_finite

_Z_95 = 1.959963984540054


def spearman_stats(scores, values) -> dict[str, np.ndarray]:
    """Spearman's rho of every score column with ``values``, its p-value and 95% interval.

    Parameters
    ----------
    scores : array-like of shape (n, m) (or (n,) for one hypothesis)
    values : array-like of shape (n,)
        One finite number per image (row of ``scores``); at least 3 images.

    Returns
    -------
    dict of ndarray of shape (m,)
        ``rho``; ``p_value`` (two-sided, t with n - 2 df: :func:`scipy.stats.spearmanr`'s);
        ``rho_low``, ``rho_high`` (Fisher z, Bonett-Wright SE; NaN below 4 images);
        ``constant`` (the column holds one score: rho and p are NaN, as scipy's).

    >>> out = spearman_stats([[1.0, 3.0], [2.0, 2.0], [3.0, 1.0]], [10.0, 20.0, 30.0])
    >>> out["rho"].round(6).tolist()
    [1.0, -1.0]
    """
    x = np.asarray(scores, dtype=np.float64)
    x = x[:, None] if x.ndim == 1 else x
    y = np.asarray(values, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 1 or x.shape[0] != y.shape[0]:
        raise ValueError(f"scores must be (n, m) and values (n,) with the same n, got shapes {x.shape} and {y.shape}")
    if y.shape[0] < 3:
        raise ValueError(f"Spearman's rho needs at least 3 images, got {y.shape[0]}")
    require_finite(x, "scores")
    require_finite(y[:, None], "values")
    if np.ptp(y) == 0:
        raise ValueError("values are all equal: nothing to correlate with")
    from scipy import special, stats  # imported on first use: not paid by the CLI's start

    n = y.shape[0]
    rank_x = stats.rankdata(x, axis=0)  # average ranks for ties, column by column
    rank_y = stats.rankdata(y)
    centred_x = rank_x - rank_x.mean(axis=0)
    centred_y = rank_y - rank_y.mean()
    constant = np.ptp(x, axis=0) == 0
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = (centred_x.T @ centred_y) / (np.linalg.norm(centred_x, axis=0) * np.linalg.norm(centred_y))
    rho = np.where(constant, np.nan, np.clip(rho, -1.0, 1.0))
    dof = n - 2
    with np.errstate(divide="ignore", invalid="ignore"):
        t = rho * np.sqrt(np.clip(dof / ((rho + 1.0) * (1.0 - rho)), 0, None))
    p_value = np.clip(2 * special.stdtr(dof, -np.abs(t)), 0.0, 1.0)
    low, high = _fisher_interval(rho, n)
    return {"rho": rho, "p_value": p_value, "rho_low": low, "rho_high": high, "constant": constant}


def _fisher_interval(rho: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """95% interval of Spearman's rho: Fisher's z with Bonett-Wright's standard error."""
    if n < 4:
        nan = np.full_like(rho, np.nan)
        return nan, nan
    se = np.sqrt((1 + rho**2 / 2) / (n - 3))
    # |rho| = 1 has z = +-inf: its interval closes at +-1 on that side.
    with np.errstate(divide="ignore"):
        z = np.arctanh(rho)
    return np.tanh(z - _Z_95 * se), np.tanh(z + _Z_95 * se)
