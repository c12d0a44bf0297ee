"""visdiff.stats against sklearn/scipy references, on continuous and heavily tied data."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import false_discovery_control, mannwhitneyu, ttest_ind
from sklearn.metrics import roc_auc_score

from visdiff import score_summary, stats


def reference(a: np.ndarray, b: np.ndarray) -> dict[str, np.ndarray]:
    labels = np.r_[np.ones(a.shape[0]), np.zeros(b.shape[0])]
    out = {"auroc": [], "t": [], "p_two_sided": [], "p_greater": [], "df": [], "p_mann_whitney": []}
    for j in range(a.shape[1]):
        out["auroc"].append(roc_auc_score(labels, np.r_[a[:, j], b[:, j]]))
        out["p_mann_whitney"].append(mannwhitneyu(a[:, j], b[:, j], alternative="greater").pvalue)
        two = ttest_ind(a[:, j], b[:, j], equal_var=False)
        out["t"].append(two.statistic)
        out["df"].append(two.df)
        out["p_two_sided"].append(two.pvalue)
        out["p_greater"].append(ttest_ind(a[:, j], b[:, j], equal_var=False, alternative="greater").pvalue)
    return {k: np.array(v) for k, v in out.items()}


def score_matrices(kind: str, n_a: int, n_b: int, m: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    shift = rng.normal(0, 0.5, size=m)
    a = rng.normal(size=(n_a, m)) + shift
    b = rng.normal(size=(n_b, m))
    if kind == "tied":  # a handful of distinct values, shared between A and B
        a, b = np.round(a), np.round(b)
    elif kind == "ties-within-one-set":
        a = np.round(a)
    return a, b


@pytest.mark.parametrize("kind", ["random", "tied", "ties-within-one-set"])
@pytest.mark.parametrize(("n_a", "n_b", "m"), [(2, 2, 1), (3, 7, 5), (40, 25, 30), (300, 200, 4)])
def test_matches_sklearn_and_scipy(kind, n_a, n_b, m):
    a, b = score_matrices(kind, n_a, n_b, m, seed=n_a * 1000 + m)
    ref = reference(a, b)
    welch = stats.welch_ttest(a, b)
    np.testing.assert_allclose(stats.auroc_score(a, b), ref["auroc"], rtol=0, atol=1e-9)
    combined = stats.separation_stats(a, b)
    for ours, welch_key in [("t", "t"), ("df", "df"), ("p_welch", "p_greater"), ("mean_a", "mean_a"),
                            ("mean_b", "mean_b"), ("effect_size", "effect_size")]:
        np.testing.assert_array_equal(combined[ours], welch[welch_key])
    np.testing.assert_array_equal(combined["auroc"], stats.auroc_score(a, b))
    # The flag's test is scipy's Mann-Whitney U with its default settings (exact or tie-corrected).
    np.testing.assert_allclose(combined["p_greater"], ref["p_mann_whitney"], rtol=1e-9, atol=1e-15)
    np.testing.assert_array_equal(stats.mann_whitney_u_test(a, b)["p_greater"], combined["p_greater"])
    finite = np.isfinite(ref["t"])
    for ours, theirs in [("t", "t"), ("df", "df"), ("p_two_sided", "p_two_sided"), ("p_greater", "p_greater")]:
        np.testing.assert_allclose(welch[ours][finite], ref[theirs][finite], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(welch["mean_a"], a.mean(axis=0))
    np.testing.assert_allclose(welch["mean_b"], b.mean(axis=0))


def test_float32_input_is_exact_like_its_float64_copy():
    a, b = score_matrices("random", 500, 400, 6, seed=3)
    a32, b32 = a.astype(np.float32), b.astype(np.float32)
    ref = reference(a32.astype(np.float64), b32.astype(np.float64))
    np.testing.assert_allclose(stats.auroc_score(a32, b32), ref["auroc"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(stats.welch_ttest(a32, b32)["t"], ref["t"], rtol=1e-9)


def test_torch_tensors_and_1d_inputs_are_one_hypothesis_each():
    import torch

    a, b = [0.9, 0.8, 0.7], [0.1, 0.85]
    expected = roc_auc_score([1, 1, 1, 0, 0], a + b)
    assert stats.auroc_score(a, b).tolist() == pytest.approx([expected])
    assert stats.auroc_score(torch.tensor(a), torch.tensor(b)).tolist() == pytest.approx([expected])
    assert stats.auroc_score(torch.tensor(a, dtype=torch.bfloat16), torch.tensor(b)).tolist() == pytest.approx([expected])
    # float64 tensors keep their precision: these two differ only beyond float32.
    close = torch.tensor([1.0, 1.0 + 1e-12], dtype=torch.float64)
    assert stats.auroc_score(close[1:].repeat(2), close[:1].repeat(2)).tolist() == [1.0]


def test_perfect_and_reversed_separation():
    a = np.array([[3.0, 0.0], [4.0, 1.0]])
    b = np.array([[1.0, 5.0], [2.0, 6.0]])
    assert stats.auroc_score(a, b).tolist() == [1.0, 0.0]


def test_identical_sets_give_half_auroc_and_zero_t():
    a = np.arange(10.0)[:, None]
    assert stats.auroc_score(a, a.copy()).tolist() == [0.5]
    welch = stats.welch_ttest(a, a.copy())
    assert welch["t"][0] == 0.0 and welch["p_two_sided"][0] == pytest.approx(1.0) and welch["p_greater"][0] == pytest.approx(0.5)


@pytest.mark.filterwarnings("ignore:Precision loss occurred:RuntimeWarning")
def test_constant_scores_give_nan_tests_not_errors():
    a = np.ones((4, 2))
    b = np.ones((3, 2))
    b[:, 1] = [0.0, 0.5, 0.2]
    welch = stats.welch_ttest(a, b)
    assert np.isnan(welch["t"][0]) and np.isnan(welch["p_two_sided"][0]) and np.isnan(welch["p_greater"][0])
    assert stats.auroc_score(a, b).tolist() == [0.5, 1.0]
    # Column 1: A constant, B varies -> finite test, same as scipy.
    ref = ttest_ind(a[:, 1], b[:, 1], equal_var=False)
    assert welch["t"][1] == pytest.approx(ref.statistic, rel=1e-12)


def test_constant_scores_not_exact_in_binary_are_still_constant():
    # Means of 0.2 round differently for 10 and 12 images; that residue is no evidence.
    a = np.full((10, 2), 0.2)
    b = np.full((12, 2), 0.2)
    b[:, 1] = 0.3
    welch = stats.welch_ttest(a, b)
    assert np.isnan(welch["t"]).all() and np.isnan(welch["p_greater"]).all()
    assert np.isnan(welch["effect_size"]).all()


def test_bh_matches_scipy_for_1_and_1000_hypotheses():
    rng = np.random.default_rng(0)
    p = np.concatenate([rng.uniform(0, 1e-3, 50), rng.uniform(size=950)])
    np.testing.assert_allclose(stats.bh_qvalues(p), false_discovery_control(p, method="bh"), rtol=1e-12)
    assert stats.bh_qvalues([0.03]).tolist() == pytest.approx([0.03])


def test_bh_leaves_nan_out_of_the_count():
    q = stats.bh_qvalues([0.01, np.nan, 0.04])
    assert np.isnan(q[1])
    np.testing.assert_allclose(q[[0, 2]], false_discovery_control([0.01, 0.04]))
    assert np.isnan(stats.bh_qvalues([np.nan, np.nan])).all()


def test_thousand_hypotheses_at_once():
    a, b = score_matrices("tied", 30, 20, 1000, seed=1)
    every_tenth = slice(None, None, 10)  # the reference loop is slow; a sample of columns
    ref = reference(a[:, every_tenth], b[:, every_tenth])
    assert stats.auroc_score(a, b).shape == (1000,)
    np.testing.assert_allclose(stats.auroc_score(a, b)[every_tenth], ref["auroc"], atol=1e-9)
    p_greater = stats.welch_ttest(a, b)["p_greater"][every_tenth]
    np.testing.assert_allclose(p_greater, ref["p_greater"], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(
    ("a", "b", "message"),
    [
        (np.ones((1, 3)), np.ones((4, 3)), "scores_a needs at least 2 images"),
        (np.ones((4, 3)), np.ones((4, 2)), "scores_a has 3 hypotheses but scores_b has 2"),
        (np.ones((2, 2, 2)), np.ones((4, 2)), "must be 1-D or 2-D"),
        (np.ones((4, 0)), np.ones((4, 0)), "no hypothesis columns"),
        (np.array([[1.0], [np.nan]]), np.ones((2, 1)), "NaN or infinite"),
        (np.array([[1.0], [np.inf]]), np.ones((2, 1)), "NaN or infinite"),
        (np.array([["x"], ["y"]]), np.ones((2, 1)), "must hold numbers"),
    ],
)
def test_validation_errors_name_the_problem(a, b, message):
    with pytest.raises(ValueError, match=message):
        stats.auroc_score(a, b)
    with pytest.raises(ValueError, match=message):
        stats.welch_ttest(a, b)


def test_bh_rejects_2d():
    with pytest.raises(ValueError, match="1-D"):
        stats.bh_qvalues(np.ones((2, 2)))


@pytest.mark.parametrize("kind", ["tied", "random"])
@pytest.mark.parametrize(("threads", "scores_per_block"), [(3, 2**24), (1, 1500), (3, 1500)])
def test_threaded_column_blocks_give_the_same_results(monkeypatch, kind, threads, scores_per_block):
    a, b = score_matrices(kind, 300, 200, 7, seed=4)
    single = stats.separation_stats(a, b)
    monkeypatch.setattr(score_summary, "_SCORES_PER_THREAD", 100)  # force several threads
    monkeypatch.setattr(score_summary.os, "cpu_count", lambda: threads)
    monkeypatch.setattr(score_summary, "_SCORES_PER_BLOCK", scores_per_block)  # 1500: a block per column
    threaded = stats.separation_stats(a, b)
    for key, value in single.items():
        np.testing.assert_array_equal(threaded[key], value)
    np.testing.assert_allclose(threaded["auroc"], reference(a, b)["auroc"], atol=1e-9)


def u_reference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    labels = np.r_[np.ones(a.shape[0]), np.zeros(b.shape[0])]
    auroc = [roc_auc_score(labels, np.r_[a[:, j], b[:, j]]) for j in range(a.shape[1])]
    return np.array(auroc) * a.shape[0] * b.shape[0]


def path_inputs(kind: str, dtype, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a, b = rng.normal(0.1, 0.3, size=(301, 6)), rng.normal(0, 0.3, size=(257, 6))
    if kind == "tied":
        a, b = np.round(a, 1), np.round(b, 1)
    elif kind == "few-ulp-apart":  # many runs of equal scores, some B-only, A-only or mixed
        a, b = (np.float32(0.25) + np.finfo(np.float32).eps * rng.integers(0, 60, size=x.shape) for x in (a, b))
    elif kind == "constant":
        a, b = np.full_like(a, 0.5), np.full_like(b, 0.5)
        b[:, :3] = 0.25
    elif kind == "negative":
        a, b = -1 - np.abs(a), -1 - np.abs(b)
    elif kind == "signed-zeros":
        values = np.array([-0.0, 0.0, -1e-3, 1e-3, -1e-40, 1e-40])
        a, b = rng.choice(values, size=a.shape), rng.choice(values, size=b.shape)
    return a.astype(dtype), b.astype(dtype)


def rows_of(a: np.ndarray, b: np.ndarray):
    (a_rows, *_, low_a, high_a), (b_rows, *_, low_b, high_b) = (
        score_summary._rows_and_moments(a, "scores_a"), score_summary._rows_and_moments(b, "scores_b"))
    return a_rows, b_rows, min(low_a.min(), low_b.min()), max(high_a.max(), high_b.max())


@pytest.fixture(params=["all rows at once", "one row at a time"])
def cache_rows(request, monkeypatch):
    """Temporaries over every row at once, or (as on big inputs) over a few rows at a time."""
    if request.param == "one row at a time":
        monkeypatch.setattr(score_summary, "_CACHED_FLOAT64S", 1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["random", "tied", "few-ulp-apart", "constant", "negative", "signed-zeros"])
def test_merge_and_search_count_the_same_exact_u_and_tie_term(kind, dtype, cache_rows):
    a, b = path_inputs(kind, dtype)
    expected = u_reference(a.astype(np.float64), b.astype(np.float64))
    a_rows, b_rows, low, high = rows_of(a, b)
    keys = score_summary._merge_keys(a_rows, b_rows, low, high)
    u_merge, ties_merge = score_summary._u_by_merge(keys, a.shape[0])
    u_search, ties_search = score_summary._u_by_search(a_rows, b_rows)
    np.testing.assert_array_equal(u_merge, u_search)
    np.testing.assert_allclose(u_merge, expected, rtol=0, atol=1e-6)  # U is a count: exact up to sklearn's rounding
    np.testing.assert_array_equal(ties_merge, ties_search)
    np.testing.assert_array_equal(ties_merge, tie_term_reference(a, b))


def tie_term_reference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """sum(t^3 - t) over groups of t equal scores in each pooled column (-0.0 equals +0.0)."""
    pooled = np.r_[a, b].astype(np.float64) + 0.0
    counts = [np.unique(column, return_counts=True)[1].astype(np.float64) for column in pooled.T]
    return np.array([(c**3 - c).sum() for c in counts])


@pytest.mark.parametrize(
    ("scale", "dtype", "width"),
    [
        (0.3, np.float32, np.uint32),  # CLIP-like scores: 32-bit keys
        (100.0, np.float32, np.uint64),  # logits: float32 keys need 33 bits
        (1e-13, np.float64, np.uint32),  # float64 scores within 2^31 ulps: their keys cut to 32 bits
        (0.3, np.float64, np.uint64),
        (1e3, np.float64, None),  # too wide for 64-bit keys: only the search counts U
    ],
)
def test_merge_keys_take_the_narrowest_width_that_holds_them(scale, dtype, width):
    rng = np.random.default_rng(1)
    a, b = (1.0 + scale * rng.normal(size=(200, 3)) if scale < 1e-6 else scale * rng.normal(size=(200, 3))
            for _ in range(2))
    a[0, 0] = b[0, 0]  # a tie across the sets
    a, b = a.astype(dtype), b.astype(dtype)
    a_rows, b_rows, low, high = rows_of(a, b)
    keys = score_summary._merge_keys(a_rows, b_rows, low, high)
    assert (None if keys is None else keys.dtype) == width
    if keys is not None:
        for by_merge, by_search in zip(score_summary._u_by_merge(keys, a.shape[0]), score_summary._u_by_search(a_rows, b_rows)):
            np.testing.assert_array_equal(by_merge, by_search)
    np.testing.assert_allclose(stats.auroc_score(a, b) * 200 * 200, u_reference(a.astype(np.float64), b.astype(np.float64)),
                               rtol=0, atol=1e-6)


def test_rows_a_few_at_a_time_give_the_same_numbers(monkeypatch):
    a, b = score_matrices("random", 300, 200, 9, seed=6)
    whole = stats.separation_stats(a, b)
    monkeypatch.setattr(score_summary, "_CACHED_FLOAT64S", 2 * 500)  # two rows per chunk, the last one alone
    for key, value in stats.separation_stats(a, b).items():
        np.testing.assert_array_equal(value, whole[key])
    np.testing.assert_allclose(whole["auroc"], reference(a, b)["auroc"], atol=1e-9)
    np.testing.assert_allclose(whole["t"], reference(a, b)["t"], rtol=1e-9)


def test_search_serves_mostly_tied_blocks_and_merge_the_rest():
    a, _ = path_inputs("tied", np.float32)
    assert score_summary._mostly_tied(rows_of(a, a)[0])
    a, _ = path_inputs("random", np.float32)
    assert not score_summary._mostly_tied(rows_of(a, a)[0])


def test_signed_zeros_are_equal_scores():
    assert stats.auroc_score([[-0.0], [0.0]], [[0.0], [-0.0]]).tolist() == [0.5]
    assert stats.auroc_score(np.float32([[-0.0], [1.0]]), np.float32([[0.0], [0.0]])).tolist() == [0.75]


@pytest.mark.parametrize("side", ["scores_a", "scores_b"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_scores_are_found_in_threaded_blocks(monkeypatch, side, bad):
    monkeypatch.setattr(score_summary, "_SCORES_PER_THREAD", 100)
    monkeypatch.setattr(score_summary.os, "cpu_count", lambda: 3)
    a, b = score_matrices("random", 300, 200, 7, seed=5)
    (a if side == "scores_a" else b)[17, 6] = bad  # in the last block
    for call in (stats.separation_stats, stats.welch_ttest, stats.auroc_score, stats.check_scores):
        with pytest.raises(ValueError, match=f"{side} contains NaN or infinite scores"):
            call(a, b)


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
def test_finite_scores_whose_sum_overflows_are_not_called_infinite():
    a, b = np.full((3, 1), 1e308), np.array([[0.0], [1.0]])
    assert stats.auroc_score(a, b).tolist() == [1.0]
