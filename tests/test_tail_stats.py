"""The tail test of --rare: exact against scipy's negative hypergeometric and a permutation
count, at most alpha on null splits, and the table ranked by it."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats as scipy_stats

from visdiff.rare_ranking import rank_rare
from visdiff.tail_stats import exceedance_survival, tail_exceedance_test, tail_rank


def test_threshold_rank_follows_the_tail_of_b():
    assert [tail_rank(n) for n in (10, 99, 100, 250)] == [1, 1, 2, 3]
    with pytest.raises(ValueError, match="tail"):
        tail_rank(10, 0.0)


def test_p_value_is_the_exact_permutation_probability():
    # Every way of splitting 9 untied scores into 4 of A and 5 of B, equally likely under the null.
    a, b = np.array([9.0, 7.0, 6.0, 2.0]), np.array([8.0, 5.0, 4.0, 3.0, 1.0])
    pooled = np.r_[a, b]
    observed = tail_exceedance_test(a, b)
    counts = []
    for chosen in itertools.combinations(range(9), 4):
        rest = np.setdiff1d(np.arange(9), chosen)
        counts.append(tail_exceedance_test(pooled[list(chosen)], pooled[rest])["tail_count"][0])
    assert observed["tail_count"][0] == 1  # only 9 beats B's highest (8)
    assert observed["p_tail"][0] == pytest.approx(np.mean(np.array(counts) >= 1), abs=1e-12)


@pytest.mark.parametrize(("n_a", "n_b", "r"), [(5, 7, 1), (100, 150, 2), (400, 300, 4)])
def test_survival_equals_scipy_nhypergeom(n_a, n_b, r):
    expected = [scipy_stats.nhypergeom.sf(k - 1, n_a + n_b, n_a, r) for k in range(n_a + 2)]
    np.testing.assert_allclose(exceedance_survival(n_a, n_b, r), expected, atol=1e-12)


def test_null_false_positive_rate_is_at_most_alpha():
    rng = np.random.default_rng(3)
    for n_a, n_b in ((100, 150), (30, 20)):
        p = tail_exceedance_test(rng.standard_normal((n_a, 4000)), rng.standard_normal((n_b, 4000)))["p_tail"]
        assert (p <= 0.05).mean() <= 0.05


def test_ties_at_the_threshold_do_not_count():
    # Every score 0 but two of A: only those two are above B's threshold.
    a = np.zeros((50, 1))
    a[:2] = 1.0
    found = tail_exceedance_test(a, np.zeros((60, 1)))
    assert found["tail_count"].tolist() == [2] and found["tail_threshold"].tolist() == [0.0]


def test_rank_rare_puts_the_rare_tail_first_where_auroc_does_not():
    rng = np.random.default_rng(0)
    b = rng.standard_normal((200, 2))
    a = rng.standard_normal((200, 2))
    a[:, 1] += 0.25  # a broad shift: the better AUROC
    a[:12, 0] += 10.0  # 6% of A far above all of B
    table, columns = rank_rare(a, b, {"A": ["rare tail", "broad shift"]})
    assert table["hypothesis"].tolist() == ["rare tail", "broad shift"] and columns == [0, 1]
    assert table["auroc"].iloc[0] < table["auroc"].iloc[1]
    assert table["tail_count"].iloc[0] >= 12 and table["significant_tail"].iloc[0]
    # Each flag beside its own test's q: "significant" stays the Mann-Whitney one.
    assert (table["significant"] == (table["q_value"] < 0.05)).all()
    assert (table["significant_tail"] == (table["q_tail"] < 0.05)).all()
    assert table.attrs["ranked_by"] == "tail"


def test_rank_rare_tests_b_over_a_on_b_rows():
    rng = np.random.default_rng(6)
    a, b = rng.standard_normal((100, 2)), rng.standard_normal((100, 2))
    b[:6, 1] += 10.0
    table, _ = rank_rare(a, b, {"A": ["x"], "B": ["y"]})
    row = table.set_index("hypothesis").loc["y"]
    assert row["direction"] == "B" and row["tail_count"] >= 6 and row["significant_tail"]
