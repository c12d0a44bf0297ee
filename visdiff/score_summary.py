"""Sufficient statistics of two score matrices, per hypothesis: Mann-Whitney U counted exactly,
the pooled tie term, means and variances, over blocks of columns (threaded on large inputs).
:mod:`visdiff.stats` turns a :class:`ScoreSummary` into the tests, interval and effect sizes;
:mod:`visdiff.stats_torch` builds one on the scores' device.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np


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


def require_finite(scores: np.ndarray, name: str) -> None:
    if not np.isfinite(scores).all():
        raise ValueError(f"{name} contains NaN or infinite scores")


# Below this many scores per thread, starting threads costs more than it saves.
_SCORES_PER_THREAD = 1_000_000
# Blocks hold at most about this many scores: each block's copies and sort keys take ~9
# bytes per score, so memory stays bounded however many images there are.
_SCORES_PER_BLOCK = 2**24
# Temporaries of about this many float64s (1 MiB) fit a core's L2 cache.
_CACHED_FLOAT64S = 2**17


def column_summaries(a: np.ndarray, b: np.ndarray, *, with_u: bool) -> ScoreSummary:
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
            require_finite(part, name)
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
