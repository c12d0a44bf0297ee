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

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache

import numpy as np


def _as_matrix(x, name: str) -> np.ndarray:
    """(n, m) float32 or float64 matrix of ``x``, its shape checked; finiteness is checked
    where the scores are first read (:func:`check_scores`, or the threaded blocks of
    :func:`_column_summaries`)."""
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


def _require_finite(scores: np.ndarray, name: str) -> None:
    if not np.isfinite(scores).all():
        raise ValueError(f"{name} contains NaN or infinite scores")


def check_scores(scores_a, scores_b) -> tuple[np.ndarray, np.ndarray]:
    """Validate; return (n_a, m) and (n_b, m) float32 or float64 matrices with the same m."""
    a, b = _matrices(scores_a, scores_b)
    _require_finite(a, "scores_a")
    _require_finite(b, "scores_b")
    return a, b


def auroc_score(scores_a, scores_b) -> np.ndarray:
    """Area under the ROC curve for telling A (positive) from B by each hypothesis's score.

    Equals the Mann-Whitney probability P(score_a > score_b) + 0.5 P(tie); ties get average
    ranks, as in ``sklearn.metrics.roc_auc_score``.

    >>> auroc_score([[3.0], [2.0]], [[1.0], [2.0]]).round(3).tolist()
    [0.875]
    """
    summary = _column_summaries(*_matrices(scores_a, scores_b), with_u=True)
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
    return _welch(_column_summaries(*_matrices(scores_a, scores_b), with_u=False))


def mann_whitney_u_test(scores_a, scores_b) -> dict[str, np.ndarray]:
    """The Mann-Whitney U test of A scoring higher than B, per hypothesis: ``u`` (A's U, so
    AUROC = U / (n_a n_b)) and ``p_greater``, equal to ``scipy.stats.mannwhitneyu(a, b,
    alternative="greater")`` with its default settings (exact when a set has at most 8 images
    and the column has no ties, else normal with tie and continuity corrections).

    >>> mann_whitney_u_test([[3.0], [4.0], [5.0]], [[1.0], [2.0]])["p_greater"].round(3).tolist()
    [0.1]
    """
    summary = _column_summaries(*_matrices(scores_a, scores_b), with_u=True)
    return {"u": summary.u, "p_greater": mann_whitney_p_greater(summary)}


def separation_stats(scores_a, scores_b) -> dict[str, np.ndarray]:
    """Everything the ranking needs, validating and copying the scores once: :func:`summary_stats`
    of the scores.

    >>> sorted(separation_stats([[1.0], [2.0], [3.0]], [[0.0], [1.0]]))  # doctest: +NORMALIZE_WHITESPACE
    ['auroc', 'auroc_high', 'auroc_low', 'constant', 'df', 'effect_size', 'mean_a', 'mean_b',
     'p_greater', 'p_welch', 't']
    """
    return summary_stats(_column_summaries(*_matrices(scores_a, scores_b), with_u=True))


@dataclass(frozen=True)
class ScoreSummary:
    """Per-hypothesis sufficient statistics of two score matrices, from which every statistic
    here follows: U (A's Mann-Whitney statistic, exact; None when not counted), the pooled tie
    term sum(t^3 - t) over groups of t equal scores (None likewise), means and variances
    (ddof=1). :mod:`visdiff.stats_torch` builds one on the scores' device."""

    n_a: int
    n_b: int
    u: np.ndarray | None
    tie_term: np.ndarray | None
    mean_a: np.ndarray
    mean_b: np.ndarray
    var_a: np.ndarray
    var_b: np.ndarray


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

    def outside(theta: np.ndarray) -> np.ndarray:
        variance = theta * (1 - theta) / (n_a * n_b) * (
            1 + (size - 1) * ((1 - theta) / (2 - theta) + theta / (1 + theta)))
        return (auroc - theta) ** 2 > z * z * variance

    # Each bound by bisection between a point outside (0 or 1) and one inside (the AUROC itself):
    # 50 halvings leave under 1e-15 of uncertainty.
    low_out, low_in = np.zeros_like(auroc), auroc.copy()
    high_in, high_out = auroc.copy(), np.ones_like(auroc)
    for _ in range(50):
        middle = (low_out + low_in) / 2
        out = outside(middle)
        low_out, low_in = np.where(out, middle, low_out), np.where(out, low_in, middle)
        middle = (high_in + high_out) / 2
        out = outside(middle)
        high_in, high_out = np.where(out, high_in, middle), np.where(out, middle, high_out)
    return low_in, high_in


# Below this many scores per thread, starting threads costs more than it saves.
_SCORES_PER_THREAD = 1_000_000
# Blocks hold at most about this many scores: each block's copies and sort keys take ~9
# bytes per score, so memory stays bounded however many images there are.
_SCORES_PER_BLOCK = 2**24
# Temporaries of about this many float64s (1 MiB) fit a core's L2 cache.
_CACHED_FLOAT64S = 2**17


def _column_summaries(a: np.ndarray, b: np.ndarray, *, with_u: bool) -> ScoreSummary:
    """Summaries of shape-checked matrices (non-finite scores raise ValueError here), from
    blocks of columns; large inputs have their blocks handled in parallel threads (numpy's
    copies, sums and sorts release the GIL). Every column gives the same numbers whatever
    block or thread it is in."""
    n_columns, n_scores = a.shape[1], a.size + b.size
    threads = max(1, min(os.cpu_count() or 1, n_columns, n_scores // _SCORES_PER_THREAD))
    n_blocks = min(n_columns, max(threads, -(-n_scores // _SCORES_PER_BLOCK)))
    bounds = np.linspace(0, n_columns, n_blocks + 1).astype(int)

    def summarise(lo: int, hi: int) -> tuple:
        return _block_summary(a[:, lo:hi], b[:, lo:hi], with_u=with_u)

    if threads == 1:
        blocks = list(map(summarise, bounds[:-1], bounds[1:]))
    else:
        with ThreadPoolExecutor(threads) as pool:
            blocks = list(pool.map(summarise, bounds[:-1], bounds[1:]))
    parts = [np.concatenate(p) if p[0] is not None else None for p in zip(*blocks)]
    return ScoreSummary(a.shape[0], b.shape[0], *parts)


def _block_summary(a: np.ndarray, b: np.ndarray, *, with_u: bool) -> tuple:
    """(u, tie_term, mean_a, mean_b, var_a, var_b) for a block of columns (u and tie_term
    None without ``with_u``).

    Works on private contiguous (hypotheses x images) copies: row sums are pairwise and
    fast, and the copies can be sorted in place. U = sum over A of #(B < a) + 0.5 #(B == a)
    is counted in integers, so it is exact and ties count half, as average ranks do; by
    :func:`_u_by_search` when the scores are mostly tied (or float64 too wide for 64-bit
    keys), else by :func:`_u_by_merge`, the faster way for continuous scores. Both also give
    the pooled tie term that the test's variance needs.
    """
    (a_rows, mean_a, var_a, low_a, high_a), (b_rows, mean_b, var_b, low_b, high_b) = (
        _rows_and_moments(a, "scores_a"), _rows_and_moments(b, "scores_b"))
    if not with_u:
        return None, None, mean_a, mean_b, var_a, var_b
    keys = None if _mostly_tied(a_rows) else _merge_keys(
        a_rows, b_rows, min(low_a.min(), low_b.min()), max(high_a.max(), high_b.max()))
    u, tie_term = _u_by_search(a_rows, b_rows) if keys is None else _u_by_merge(keys, a_rows.shape[1])
    return u, tie_term, mean_a, mean_b, var_a, var_b


def _rows_and_moments(columns: np.ndarray, name: str) -> tuple:
    """(rows, mean, variance, min, max) of a block of score columns: ``rows`` is a private
    contiguous (hypotheses x images) copy with -0.0 made +0.0 (adding +0.0 changes nothing
    else), so equal scores have equal bits; variances (ddof=1) are exactly 0 for constant
    rows, where the rounding of the mean would otherwise leave ~1e-33 and turn a constant
    score into a "significant" one. A non-finite mean is how a NaN or infinite score shows."""
    rows = np.add(columns.T, 0.0, order="C")
    mean, var = np.empty(len(rows)), np.empty(len(rows))
    low, high = np.empty(len(rows), rows.dtype), np.empty(len(rows), rows.dtype)
    # A few rows at a time, so that they and their float64 deviations stay in the CPU cache
    # between the passes (each row's figures come out the same either way).
    step = max(1, _CACHED_FLOAT64S // rows.shape[1])
    for lo in range(0, len(rows), step):
        chunk, part = slice(lo, lo + step), rows[lo : lo + step]
        part.mean(axis=1, dtype=np.float64, out=mean[chunk])
        if not np.isfinite(mean[chunk]).all():  # or finite float64 scores whose sum overflows
            _require_finite(part, name)
        part.min(axis=1, out=low[chunk])
        part.max(axis=1, out=high[chunk])
        var[chunk] = part.var(axis=1, ddof=1, dtype=np.float64, mean=mean[chunk, None])
    var[low == high] = 0.0
    return rows, mean, var, low, high


def _mostly_tied(a_rows: np.ndarray) -> bool:
    """Whether a sample of about 256 scores per row repeats values in over half its places:
    then few distinct A values need locating and :func:`_u_by_search` is the faster way.
    Either way gives the same U; this only picks the speed."""
    sample = np.sort(a_rows[:, :: max(1, a_rows.shape[1] // 256)], axis=1)
    return 2 * np.count_nonzero(sample[:, 1:] == sample[:, :-1]) > sample.size


def _u_by_search(a_rows: np.ndarray, b_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(U, pooled tie term) per row from sorted rows (sorted here, in place): each distinct A
    value is located once in its sorted B row (one search serves all A values equal to it:
    fast when scores are rounded to a few decimals)."""
    a_rows.sort(axis=1)
    b_rows.sort(axis=1)
    n_b = b_rows.shape[1]
    u, tie_term = np.empty(a_rows.shape[0]), np.empty(a_rows.shape[0])
    for j, (a_row, b_row) in enumerate(zip(a_rows, b_rows)):
        values, counts = _runs(a_row)
        below = np.searchsorted(b_row, values, side="left")
        # Only A values that also occur in B need the count of equal B values.
        tied = b_row[np.minimum(below, n_b - 1)] == values
        equal = np.searchsorted(b_row, values[tied], side="right") - below[tied]
        u[j] = int((below * counts).sum()) + int((equal * counts[tied]).sum()) / 2.0
        # sum of t^3 - t over pooled groups: each set's own groups, plus what joining an A
        # group of c_a with a B group of c_b adds, 3 c_a c_b (c_a + c_b).
        c_a, c_b, c_shared = counts.astype(np.float64), _runs(b_row)[1].astype(np.float64), counts[tied] * equal
        tie_term[j] = ((c_a**3 - c_a).sum() + (c_b**3 - c_b).sum()
                       + 3 * (c_shared * (counts[tied] + equal).astype(np.float64)).sum())
    return u, tie_term


def _runs(sorted_row: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct values, how many times each occurs) of a sorted row."""
    starts = np.flatnonzero(np.r_[True, sorted_row[1:] != sorted_row[:-1]])
    return sorted_row[starts], np.diff(np.r_[starts, len(sorted_row)])


def _ordered_int(values: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out`` (signed integers) set to integers in the order of the floats ``values``: their
    sign-magnitude bits made two's complement (-0.0 is one below +0.0), modulo 2^(out's bits)."""
    i = values.view(np.int32 if values.dtype == np.float32 else np.int64)
    magnitude = np.iinfo(i.dtype).max % 2 ** (8 * out.itemsize)  # its low bits when out is narrower
    np.right_shift(i, 8 * i.itemsize - 1, out=out, casting="unsafe")  # -1 where negative, else 0
    out &= magnitude if magnitude <= np.iinfo(out.dtype).max else -1
    np.bitwise_xor(out, i, out=out, casting="unsafe")
    return out


def _merge_keys(a_rows: np.ndarray, b_rows: np.ndarray, low, high) -> np.ndarray | None:
    """(rows, n_b + n_a) unsigned sort keys of B's then A's scores (finite, no -0.0, all in
    [low, high]): 2 * (ordered int - ordered int of ``low``) + 1 for A, + 0 for B, so a key
    sort orders by score and puts B before A on equal scores. uint32 when they fit (twice
    as fast to sort), uint64 otherwise; None when not even 64 bits hold them (float64 scores
    spanning more than about [-2, 2]; :func:`_u_by_search` then counts U)."""
    lowest, highest = (int(_ordered_int(np.array([x]), np.empty(1, np.int64))[0]) for x in (low, high))
    span = highest - lowest
    if span >= 2**63:
        return None
    unsigned, signed = (np.uint32, np.int32) if span < 2**31 else (np.uint64, np.int64)
    n_b = b_rows.shape[1]
    keys = np.empty((a_rows.shape[0], n_b + a_rows.shape[1]), unsigned)
    step = max(1, _CACHED_FLOAT64S // keys.shape[1])  # a few rows at a time, as they stay cached
    for lo in range(0, len(keys), step):
        for rows, columns, label in ((b_rows, slice(None, n_b), 0), (a_rows, slice(n_b, None), 1)):
            # Written in place: the ordered ints (float64's cut to their low 32 bits when the
            # span allows), then twice their distance from the lowest, plus the label. Both
            # the cut and unsigned arithmetic are modulo 2^bits, so the key is exact whenever
            # it fits, which the span test ensures.
            key = keys[lo : lo + step, columns]
            _ordered_int(rows[lo : lo + step], key.view(signed))
            key <<= 1
            key += unsigned((label - 2 * lowest) % 2 ** (8 * keys.itemsize))
    return keys


def _u_by_merge(keys: np.ndarray, n_a: int) -> tuple[np.ndarray, np.ndarray]:
    """(U, pooled tie term) per row from :func:`_merge_keys` (sorted here, in place). After the sort the A score
    at position p has p - (A scores before it) B scores <= it, so S = sum over A of
    #(B <= a) = (sum of A positions) - n_a (n_a - 1) / 2, in integers. U = S - T / 2, with
    T the number of (a, b) pairs of equal scores: the sum over runs of equal scores of
    n_B * n_A, found from the few places where neighbours are equal."""
    keys.sort(axis=1)
    rows, n = keys.shape
    a_positions = np.empty(rows, np.uint64)
    same = np.empty(keys.shape, bool)  # [i, j]: keys j and j + 1 of row i hold the same score
    same[:, -1] = False
    positions = np.arange(n, dtype=np.uint64)
    step = max(1, _CACHED_FLOAT64S // n)  # a few rows at a time: their temporaries stay cached
    for lo in range(0, rows, step):
        chunk = keys[lo : lo + step]
        # einsum: one pass, and no BLAS threads inside ours.
        a_positions[lo : lo + step] = np.einsum("ij,j->i", chunk & 1, positions, dtype=np.uint64)
        np.less_equal(chunk[:, 1:] ^ chunk[:, :-1], 1, out=same[lo : lo + step, :-1])
    below_or_equal = (a_positions - n_a * (n_a - 1) // 2).astype(np.float64)
    flat = keys.ravel()
    equal = np.flatnonzero(same)  # flat places f: keys f and f + 1 of ``flat`` hold the same score
    # Runs of equal scores are runs of consecutive places in ``equal``; a run holding B and
    # A scores has one B-then-A place t, with n_B = t + 1 - start and n_A = end - t.
    run_breaks = np.flatnonzero(np.diff(equal) != 1) + 1
    first, last = np.r_[0, run_breaks], np.r_[run_breaks, len(equal)] - 1
    mixed = np.flatnonzero(flat[equal + 1] - flat[equal] == 1)
    run = np.searchsorted(run_breaks, mixed, side="right")
    t, start, end = equal[mixed], equal[first[run]], equal[last[run]] + 1
    equal_pairs = np.bincount(t // n, weights=(t + 1 - start) * (end - t), minlength=rows)
    # Every run of t equal scores adds t^3 - t to the pooled tie term (as float: exact to 2^53).
    if len(equal) == 0:
        return below_or_equal, np.zeros(rows)
    run_sizes = (equal[last] - equal[first] + 2).astype(np.float64)
    tie_term = np.bincount(equal[first] // n, weights=run_sizes**3 - run_sizes, minlength=rows)
    return below_or_equal - equal_pairs / 2, tie_term


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
