"""The exact statistics of :mod:`visdiff.stats` on torch tensors, on the tensors' device.

For scores that live on a GPU (a :class:`visdiff.Comparison` keeps its embeddings there),
copying the (n, m) matrices to the host and sorting them there would cost more than
everything else. Here the O(n log n) work (sorting the scores, locating them in each other,
means and variances) runs on the device; only m-length vectors come back, as a
:class:`visdiff.score_summary.ScoreSummary`, and the tests, interval and BH q-values are then computed
by :func:`visdiff.stats.summary_stats` itself (torch has no incomplete beta function, and m is small). Results equal :func:`visdiff.stats.separation_stats`
to rounding (tests hold them to 1e-9).
"""

from __future__ import annotations

import numpy as np
import torch

from visdiff import stats
from visdiff.score_summary import ScoreSummary


def _as_matrix(x: torch.Tensor, name: str) -> torch.Tensor:
    """Validated (n, m) scores: float32 stays float32 (its sort is exact and faster), anything
    else becomes float64, as in :func:`visdiff.stats.check_scores`."""
    x = x.detach()
    if x.dtype not in (torch.float32, torch.float64):
        x = x.double()
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise ValueError(f"{name} must be 1-D or 2-D (images x hypotheses), got shape {tuple(x.shape)}")
    if x.shape[0] < 2:
        raise ValueError(f"{name} needs at least 2 images, got shape {tuple(x.shape)}")
    if x.shape[1] < 1:
        raise ValueError(f"{name} has no hypothesis columns, got shape {tuple(x.shape)}")
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} contains NaN or infinite scores")
    return x


def _moments(columns: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Column means and variances (ddof=1), taken in float64; the variance is exactly 0 for
    constant columns (as in :func:`visdiff.stats._rows_and_moments`: rounding of the mean would
    otherwise leave ~1e-33 and make a constant score "significant")."""
    wide = columns.double()
    var = wide.var(dim=0, correction=1).masked_fill(columns.amax(dim=0) == columns.amin(dim=0), 0.0)
    return wide.mean(dim=0).cpu().numpy(), var.cpu().numpy()


def separation_stats(scores_a: torch.Tensor, scores_b: torch.Tensor) -> dict[str, np.ndarray]:
    """:func:`visdiff.stats.separation_stats`, as numpy arrays, for (n_a, m) and (n_b, m)
    score tensors on one device.

    U = sum over A of #(B < a) + 0.5 #(B == a), counted by binary searches of each A score in
    its sorted B column: integer counts, so U is exact and ties count half (average ranks).
    The pooled tie term sum(t^3 - t) is the sum over all scores of (t^2 - 1), t being how many
    scores of both sets equal it, counted by the same searches.
    """
    a = _as_matrix(scores_a, "scores_a")
    b = _as_matrix(scores_b, "scores_b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"scores_a has {a.shape[1]} hypotheses but scores_b has {b.shape[1]} "
                         f"(shapes {tuple(a.shape)} and {tuple(b.shape)})")
    if a.dtype != b.dtype:
        a, b = a.double(), b.double()
    n_a, n_b = a.shape[0], b.shape[0]
    # (hypotheses x images) rows: searchsorted works along the last dimension.
    a_rows, b_rows = a.T.contiguous(), b.T.contiguous()
    a_sorted, b_sorted = a_rows.sort(dim=1).values, b_rows.sort(dim=1).values
    below, b_equal_a = _below_and_equal(b_sorted, a_rows)
    u = below.sum(dim=1).double() + b_equal_a.sum(dim=1).double() / 2.0
    equal_in_pool = torch.cat([b_equal_a + _below_and_equal(a_sorted, a_rows)[1],
                               sum(_below_and_equal(s, b_rows)[1] for s in (a_sorted, b_sorted))], dim=1).double()
    tie_term = (equal_in_pool**2 - 1).sum(dim=1)
    (mean_a, var_a), (mean_b, var_b) = _moments(a), _moments(b)
    summary = ScoreSummary(n_a, n_b, u.cpu().numpy(), tie_term.cpu().numpy(), mean_a, mean_b, var_a, var_b)
    return stats.summary_stats(summary)


def _below_and_equal(sorted_rows: torch.Tensor, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For each value, how many scores of its sorted row are below it and how many equal it."""
    below = torch.searchsorted(sorted_rows, values, side="left")
    return below, torch.searchsorted(sorted_rows, values, side="right") - below
