"""The flag's test agrees with AUROC: Mann-Whitney U against scipy, its null false-positive
rate and the AUROC interval's coverage by simulation, perfect separation, constant scores and
the direction of every row."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import false_discovery_control, mannwhitneyu, norm

from visdiff import rank_scores, stats
from visdiff.ranking import rank_directions


def scipy_p_greater(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.array([mannwhitneyu(a[:, j], b[:, j], alternative="greater").pvalue for j in range(a.shape[1])])


@pytest.mark.parametrize(("n_a", "n_b"), [(3, 5), (8, 30), (30, 8), (9, 9), (50, 70)])
@pytest.mark.parametrize("decimals", [None, 1])
def test_p_greater_is_scipys_mann_whitney_with_default_settings(n_a, n_b, decimals):
    # n <= 8 on one side without ties: scipy's exact method; otherwise the tie-corrected normal.
    rng = np.random.default_rng(n_a * 100 + n_b)
    a, b = rng.normal(0.3, 1, (n_a, 12)), rng.normal(0, 1, (n_b, 12))
    if decimals is not None:
        a, b = a.round(decimals), b.round(decimals)
    table = rank_scores(a, b, [f"h{j}" for j in range(12)]).set_index("hypothesis").loc[[f"h{j}" for j in range(12)]]
    expected = scipy_p_greater(a, b)
    np.testing.assert_allclose(table["p_greater"], expected, rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(table["q_value"], false_discovery_control(expected, method="bh"), rtol=1e-9)


def test_exact_distribution_for_a_small_set_against_a_large_one():
    rng = np.random.default_rng(5)
    a, b = rng.normal(0.5, 1, (6, 4)), rng.normal(0, 1, (400, 4))
    np.testing.assert_allclose(stats.mann_whitney_u_test(a, b)["p_greater"], scipy_p_greater(a, b), rtol=1e-9)


@pytest.mark.parametrize("decimals", [None, 1])
def test_null_false_positive_rate_at_005_over_2000_columns(decimals):
    rng = np.random.default_rng(11)
    a, b = rng.normal(size=(40, 2000)), rng.normal(size=(40, 2000))
    if decimals is not None:  # heavily tied scores, as a coarse scorer gives
        a, b = a.round(decimals), b.round(decimals)
    rate = float(np.mean(stats.separation_stats(a, b)["p_greater"] < 0.05))
    assert 0.03 <= rate <= 0.07, rate


@pytest.mark.parametrize("shift", [0.0, 0.74])  # true AUROC 0.5 and 0.70
@pytest.mark.parametrize("distribution", ["normal", "exponential"])
def test_auroc_interval_covers_the_true_auroc_95_percent_of_the_time_at_40_per_side(shift, distribution):
    rng = np.random.default_rng(7)
    if distribution == "normal":
        a, b = rng.normal(shift, 1, (40, 2000)), rng.normal(0, 1, (40, 2000))
        true_auroc = norm.cdf(shift / np.sqrt(2))
    else:  # P(X > Y) for exponentials with rates 1 and 1/r is r / (1 + r)
        ratio = np.exp(shift)
        a, b = rng.exponential(ratio, (40, 2000)), rng.exponential(1, (40, 2000))
        true_auroc = ratio / (1 + ratio)
    found = stats.separation_stats(a, b)
    coverage = float(np.mean((found["auroc_low"] <= true_auroc) & (true_auroc <= found["auroc_high"])))
    assert 0.93 <= coverage <= 0.97, coverage
    assert (found["auroc_low"] <= found["auroc"]).all() and (found["auroc"] <= found["auroc_high"]).all()


def test_perfect_separation_is_significant_with_an_interval_below_one():
    table = rank_scores(np.ones((20, 1)), np.full((20, 1), 0.02), ["x"])
    row = table.iloc[0]
    assert row.auroc == 1.0 and row.significant and not row.constant
    assert row.p_greater == pytest.approx(mannwhitneyu(np.ones(20), np.full(20, 0.02), alternative="greater").pvalue)
    assert 0.85 < row.auroc_low < 1.0 and row.auroc_high == 1.0
    assert np.isfinite([row.p_greater, row.q_value]).all()


def test_near_perfect_separation_of_varying_scores_is_significant():
    a = np.linspace(1.0, 2.0, 15)[:, None]
    b = np.r_[np.linspace(0.0, 0.9, 14), 1.5][:, None]
    row = rank_scores(a, b, ["x"]).iloc[0]
    assert row.auroc > 0.9 and row.significant


def test_one_score_everywhere_is_p_one_and_marked_constant():
    scores_a, scores_b = np.full((10, 2), 0.02), np.full((12, 2), 0.02)
    scores_b[:, 1] = np.linspace(0, 0.04, 12)
    table = rank_scores(scores_a, scores_b, ["indoor scenes", "varies in B"]).set_index("hypothesis")
    assert table.loc["indoor scenes", "p_greater"] == 1.0 and table.loc["indoor scenes", "constant"]
    assert not table.loc["indoor scenes", "significant"]
    assert not table.loc["varies in B", "constant"]


def test_flag_follows_auroc_where_the_means_disagree():
    # A skewed A: most images below B, one far above. Its mean is higher, its AUROC below 0.5.
    a = np.r_[np.full(19, 0.1), 50.0][:, None]
    b = np.linspace(0.2, 0.4, 20)[:, None]
    row = rank_scores(a, b, ["x"]).iloc[0]
    assert row.mean_a > row.mean_b and row.auroc < 0.5
    assert row.favours == "B" and not row.significant and row.p_greater > 0.5


def test_significant_rows_favour_their_side_in_both_directions():
    rng = np.random.default_rng(3)
    a, b = rng.normal(0, 1, (30, 4)), rng.normal(0, 1, (30, 4))
    a[:, 0] += 2  # more true of A
    b[:, 2] += 2  # more true of B
    proposals = {"A": ["a0", "a1"], "B": ["b0", "b1"]}
    scores_a = np.c_[a[:, 0], a[:, 2], a[:, 2], a[:, 0]]  # b0 = column 2 (true of B), b1 = column 0 (true of A)
    scores_b = np.c_[b[:, 0], b[:, 2], b[:, 2], b[:, 0]]
    table, _ = rank_directions(scores_a, scores_b, proposals)
    rows = table.set_index("hypothesis")
    assert rows.loc["a0", "favours"] == "A" and rows.loc["a0", "significant"]
    assert rows.loc["b0", "favours"] == "B" and rows.loc["b0", "significant"]
    # Proposed as more true of B, but its scores are higher on A: never flagged on B's side.
    assert rows.loc["b1", "favours"] == "A" and rows.loc["b1", "auroc"] < 0.5 and not rows.loc["b1", "significant"]
    assert (table.loc[table["significant"], "favours"] == table.loc[table["significant"], "direction"]).all()
