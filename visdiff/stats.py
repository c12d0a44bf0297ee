"""Statistics that rank hypotheses, vectorised over all hypotheses at once.

Inputs are score matrices ``scores_a`` of shape (n_a, m) and ``scores_b`` of shape (n_b, m):
column j holds every image's score for hypothesis j. A 1-D input is one hypothesis. Every
function returns one value per hypothesis. Names ending in ``_score`` are higher-is-better.
Pure numpy/scipy: no plots, I/O or significance cut-offs here.

The test that flags a hypothesis is the one AUROC is the statistic of: the Mann-Whitney U test
(AUROC = U / (n_a n_b)), so the flag and the ranking never disagree. Welch's t, the paper's
statistic, is computed beside it.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from visdiff.score_summary import ScoreSummary, column_summaries, require_finite


def _as_matrix(x, name: str) -> np.ndarray:
    """(n, m) float32 or float64 matrix of ``x``, its shape checked; finiteness is checked
    where the scores are first read (:func:`check_scores`, or the threaded blocks of
    :func:`visdiff.score_summary.column_summaries`)."""
    if hasattr(x, "detach"):  # torch tensor on any device; numpy has no bfloat16
        x = x.detach().cpu()
        x = (x if str(x.dtype) in ("torch.float32", "torch.float64") else x.double()).numpy()
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
    return arr


def _matrices(scores_a, scores_b) -> tuple[np.ndarray, np.ndarray]:
    a = _as_matrix(scores_a, "scores_a")
    b = _as_matrix(scores_b, "scores_b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(
            f"scores_a has {a.shape[1]} hypotheses but scores_b has {b.shape[1]} "
            f"(shapes {a.shape} and {b.shape})"
        )
    if a.dtype != b.dtype:  # both become float64, exactly: the two sets' scores are compared as numbers
        a, b = a.astype(np.float64), b.astype(np.float64)
    return a, b


def check_scores(scores_a, scores_b) -> tuple[np.ndarray, np.ndarray]:
    """Validate; return (n_a, m) and (n_b, m) float32 or float64 matrices with the same m."""
    a, b = _matrices(scores_a, scores_b)
    require_finite(a, "scores_a")
    require_finite(b, "scores_b")
    return a, b


def auroc_score(scores_a, scores_b) -> np.ndarray:
    """Area under the ROC curve for telling A (positive) from B by each hypothesis's score.

    Equals the Mann-Whitney probability P(score_a > score_b) + 0.5 P(tie); ties get average
    ranks, as in ``sklearn.metrics.roc_auc_score``.

    >>> auroc_score([[3.0], [2.0]], [[1.0], [2.0]]).round(3).tolist()
    [0.875]
    """
    summary = column_summaries(*_matrices(scores_a, scores_b), with_u=True)
    return summary.u / (summary.n_a * summary.n_b)


def welch_ttest(scores_a, scores_b) -> dict[str, np.ndarray]:
    """Welch's unequal-variance t-test of mean(A) vs mean(B), per hypothesis.

    Returns a dict of arrays (one value per hypothesis): ``t``, ``df``, ``p_two_sided`` (as
    ``scipy.stats.ttest_ind(a, b, equal_var=False)``), ``p_greater`` (one-sided, A > B),
    ``mean_a``, ``mean_b``, and ``effect_size`` (Cohen's d with the average of both variances).
    Hypotheses whose scores are constant in both sets get NaN statistics, as in scipy.

    >>> r = welch_ttest([[1.0], [2.0], [3.0]], [[0.0], [1.0]])
    >>> round(float(r["t"][0]), 4), round(float(r["p_two_sided"][0]), 4)
    (1.964, 0.148)
    """
    return _welch(column_summaries(*_matrices(scores_a, scores_b), with_u=False))


def mann_whitney_u_test(scores_a, scores_b) -> dict[str, np.ndarray]:
    """The Mann-Whitney U test of A scoring higher than B, per hypothesis: ``u`` (A's U, so
    AUROC = U / (n_a n_b)) and ``p_greater``, equal to ``scipy.stats.mannwhitneyu(a, b,
    alternative="greater")`` with its default settings (exact when a set has at most 8 images
    and the column has no ties, else normal with tie and continuity corrections).

    >>> mann_whitney_u_test([[3.0], [4.0], [5.0]], [[1.0], [2.0]])["p_greater"].round(3).tolist()
    [0.1]
    """
    summary = column_summaries(*_matrices(scores_a, scores_b), with_u=True)
    return {"u": summary.u, "p_greater": mann_whitney_p_greater(summary)}


def separation_stats(scores_a, scores_b) -> dict[str, np.ndarray]:
    """Everything the ranking needs, validating and copying the scores once: :func:`summary_stats`
    of the scores.

    >>> sorted(separation_stats([[1.0], [2.0], [3.0]], [[0.0], [1.0]]))  # doctest: +NORMALIZE_WHITESPACE
    ['auroc', 'auroc_high', 'auroc_low', 'constant', 'df', 'effect_size', 'mean_a', 'mean_b',
     'p_greater', 'p_welch', 't']
    """
    return summary_stats(column_summaries(*_matrices(scores_a, scores_b), with_u=True))


def summary_stats(summary: ScoreSummary) -> dict[str, np.ndarray]:
    """From a summary with U: ``auroc`` with its 95% interval (``auroc_low``, ``auroc_high``,
    :func:`auroc_interval`), ``p_greater`` (one-sided Mann-Whitney U test, A > B), Welch's
    ``t``, ``df`` and one-sided ``p_welch`` (the paper's statistic), ``mean_a``, ``mean_b``,
    ``effect_size``, and ``constant``: every image of both sets got the same score (p = 1)."""
    n_a, n_b = summary.n_a, summary.n_b
    auroc = summary.u / (n_a * n_b)
    low, high = auroc_interval(auroc, n_a, n_b)
    welch = _welch(summary)
    return {
        "auroc": auroc, "auroc_low": low, "auroc_high": high,
        "p_greater": mann_whitney_p_greater(summary),
        "t": welch["t"], "df": welch["df"], "p_welch": welch["p_greater"],
        "mean_a": welch["mean_a"], "mean_b": welch["mean_b"], "effect_size": welch["effect_size"],
        # Constant in each set with A's U at half its range: one score everywhere.
        "constant": (summary.var_a == 0) & (summary.var_b == 0) & (2 * summary.u == n_a * n_b),
    }


# scipy's rule for its default method: exact when a set has at most this many images and the
# column has no ties.
_EXACT_MAX_IMAGES = 8


def mann_whitney_p_greater(summary: ScoreSummary) -> np.ndarray:
    """One-sided (A > B) Mann-Whitney p per hypothesis from a summary with U and tie terms, as
    ``scipy.stats.mannwhitneyu(alternative="greater")`` computes it by default. A column with
    one score everywhere has p = 1 (no evidence), whatever method."""
    from scipy import special  # imported on first use: not paid by the CLI's start

    n_a, n_b, u = summary.n_a, summary.n_b, summary.u
    n = n_a + n_b
    sigma = np.sqrt(n_a * n_b / 12.0 * ((n + 1) - summary.tie_term / (n * (n - 1))))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (u - n_a * n_b / 2.0 - 0.5) / sigma  # continuity-corrected; -inf when sigma is 0
    p = special.ndtr(-z)
    exact = summary.tie_term == 0
    if min(n_a, n_b) <= _EXACT_MAX_IMAGES and exact.any():
        p[exact] = _exact_u_survival(min(n_a, n_b), max(n_a, n_b))[u[exact].astype(np.int64)]
    return np.clip(p, 0.0, 1.0)


@lru_cache(maxsize=16)
def _exact_u_survival(k: int, n: int) -> np.ndarray:
    """P(U >= u) for u = 0..k n under the null, for sets of k and n untied scores. The counts
    of U are the coefficients of the Gaussian binomial [n + k choose k](q) = prod over
    i = 1..k of (1 - q^(n + i)) / (1 - q^i), multiplied out here in Python integers (exact at
    any size; the counts pass 2^64 near 8 x 40,000)."""
    size = k * n + 1
    counts = np.zeros(size, dtype=object)
    counts[0] = 1
    for i in range(1, k + 1):
        shift = n + i
        counts[shift:] = counts[shift:] - counts[: size - shift]  # times (1 - q^(n + i))
        for residue in range(i):  # divided by (1 - q^i): running sums with stride i
            counts[residue::i] = np.cumsum(counts[residue::i])
    at_least = np.cumsum(counts[::-1])[::-1]
    total = at_least[0]
    return np.array([int(c) / total for c in at_least])


# Two-sided 95%: the normal quantile 1 - 0.025.
_Z_95 = 1.959963984540054
AUROC_INTERVAL_METHOD = "Newcombe's score interval (2006, method 5)"


def auroc_interval(auroc, n_a: int, n_b: int, *, z: float = _Z_95) -> tuple[np.ndarray, np.ndarray]:
    """95% interval of each AUROC: Newcombe's (2006) method 5, the values theta whose
    Hanley-McNeil variance V(theta) (exponential model, with both sizes taken as
    N = (n_a + n_b) / 2 - 1) holds (auroc - theta)^2 <= z^2 V(theta). Unlike a Wald interval it
    is never a single point: AUROC 1.0 from 12 + 12 images gets [0.84, 1.0]. Coverage is
    measured in ``benchmarks/bench_auroc_interval.py``.

    >>> [v.round(3).tolist() for v in auroc_interval(np.array([1.0, 0.5]), 12, 12)]
    [[0.844, 0.297], [1.0, 0.703]]
    """
    auroc = np.asarray(auroc, dtype=np.float64)
    size = (n_a + n_b) / 2.0 - 1.0
    both = np.concatenate([auroc, auroc])  # the lower bounds, then the upper ones: one array op each step

    def outside(theta: np.ndarray) -> np.ndarray:
        variance = theta * (1 - theta) / (n_a * n_b) * (
            1 + (size - 1) * ((1 - theta) / (2 - theta) + theta / (1 + theta)))
        return (both - theta) ** 2 > z * z * variance

    # Each bound by bisection between a point outside (0 for the lower, 1 for the upper bound)
    # and one inside (the AUROC itself): 40 halvings leave under 1e-12 of uncertainty.
    out_end = np.r_[np.zeros_like(auroc), np.ones_like(auroc)]
    in_end = both.copy()
    for _ in range(40):
        middle = (out_end + in_end) / 2
        out = outside(middle)
        out_end, in_end = np.where(out, middle, out_end), np.where(out, in_end, middle)
    return in_end[: len(auroc)], in_end[len(auroc):]


def _welch(summary: ScoreSummary) -> dict[str, np.ndarray]:
    n_a, n_b = summary.n_a, summary.n_b
    mean_a, mean_b, var_a, var_b = summary.mean_a, summary.mean_b, summary.var_a, summary.var_b
    se2_a, se2_b = var_a / n_a, var_b / n_b
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (mean_a - mean_b) / np.sqrt(se2_a + se2_b)
        df = (se2_a + se2_b) ** 2 / (se2_a**2 / (n_a - 1) + se2_b**2 / (n_b - 1))
        effect = (mean_a - mean_b) / np.sqrt((var_a + var_b) / 2.0)
    # Constant in both sets: t is undefined, as in scipy (the rank test still decides there).
    degenerate = (var_a == 0) & (var_b == 0)
    t[degenerate] = df[degenerate] = effect[degenerate] = np.nan
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
    from scipy import special  # imported on first use: not paid by the CLI's start

    return special.stdtr(df, -t)


def score_correlation(scores) -> np.ndarray:
    """(m, m) Pearson correlation of the m score columns of an (n, m) matrix; NaN where a
    column is constant (no evidence that it moves with another).

    >>> score_correlation([[0.0, 1.0, 2.0], [1.0, 0.0, 2.0]]).round(2).tolist()
    [[1.0, -1.0, nan], [-1.0, 1.0, nan], [nan, nan, nan]]
    """
    x = np.asarray(scores, dtype=np.float64)
    centred = x - x.mean(axis=0)
    # A mean's rounding leaves a constant column tiny non-zero residues: test constancy exactly.
    norms = np.where(np.ptp(x, axis=0) > 0, np.linalg.norm(centred, axis=0), np.nan)
    return (centred.T @ centred) / np.outer(norms, norms)


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
        from scipy.stats import false_discovery_control  # 0.4 s to import: not paid by the CLI's start

        q[finite] = false_discovery_control(p[finite], method="bh")
    return q
