"""Spearman's rho over all hypotheses at once: equal to scipy.stats.spearmanr (ties included),
its interval, and the ranked table by value."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as scipy_stats

from visdiff.correlation_stats import spearman_stats
from visdiff.errors import InputError
from visdiff.value_ranking import rank_by_value


@pytest.mark.parametrize("n", [4, 9, 60, 500])
def test_rho_and_p_equal_scipy_spearmanr_with_ties(n):
    rng = np.random.default_rng(n)
    values = rng.integers(0, 6, n).astype(float)  # many ties in the value
    scores = np.column_stack([
        rng.integers(0, 4, n),  # many ties in the scores
        rng.standard_normal(n),
        values * 2 + rng.integers(0, 2, n),  # follows the value
        -values,  # perfectly against it
    ]).astype(float)
    found = spearman_stats(scores, values)
    for j in range(scores.shape[1]):
        expected = scipy_stats.spearmanr(scores[:, j], values)
        assert found["rho"][j] == pytest.approx(expected.statistic, abs=1e-12)
        assert found["p_value"][j] == pytest.approx(expected.pvalue, abs=1e-12)


def test_interval_holds_rho_and_is_fisher_z_with_bonett_wright_se():
    rng = np.random.default_rng(0)
    values = rng.standard_normal(40)
    scores = np.column_stack([values + rng.standard_normal(40), rng.standard_normal(40)])
    found = spearman_stats(scores, values)
    assert np.all(found["rho_low"] < found["rho"]) and np.all(found["rho"] < found["rho_high"])
    se = np.sqrt((1 + found["rho"] ** 2 / 2) / 37)
    np.testing.assert_allclose(np.arctanh(found["rho_high"]) - np.arctanh(found["rho"]), 1.959963984540054 * se)


def test_interval_covers_the_true_rho_about_95_percent_of_the_time():
    # Bivariate normal with Pearson r = 0.5: Spearman's population rho = (6 / pi) asin(r / 2).
    rng = np.random.default_rng(7)
    true_rho = 6 / np.pi * np.arcsin(0.25)
    n, trials = 50, 2000
    values = rng.standard_normal((trials, n))
    scores = 0.5 * values + np.sqrt(0.75) * rng.standard_normal((trials, n))
    covered = []
    for x, y in zip(scores, values):
        found = spearman_stats(x, y)
        covered.append(found["rho_low"][0] <= true_rho <= found["rho_high"][0])
    assert 0.93 <= np.mean(covered) <= 0.975


def test_null_false_positive_rate_is_at_most_alpha():
    rng = np.random.default_rng(11)
    values = rng.standard_normal(80)
    found = spearman_stats(rng.standard_normal((80, 4000)), values)
    assert (found["p_value"] < 0.05).mean() <= 0.05 + 0.01  # 0.01: about 3 binomial standard errors


def test_constant_column_is_nan_as_scipy_and_bad_input_is_refused():
    found = spearman_stats([[1.0, 0.0], [1.0, 1.0], [1.0, 2.0]], [1.0, 2.0, 3.0])
    assert found["constant"].tolist() == [True, False] and np.isnan(found["rho"][0]) and np.isnan(found["p_value"][0])
    with pytest.raises(ValueError, match="at least 3"):
        spearman_stats([[1.0], [2.0]], [1.0, 2.0])
    with pytest.raises(ValueError, match="all equal"):
        spearman_stats([[1.0], [2.0], [3.0]], [5.0, 5.0, 5.0])
    with pytest.raises(ValueError, match="same n"):
        spearman_stats([[1.0], [2.0], [3.0]], [1.0, 2.0])


def test_rank_by_value_orders_by_absolute_rho_and_names_the_end():
    values = np.arange(10.0)
    scores = np.column_stack([np.ones(10), values % 3, -values, values ** 2])
    table = rank_by_value(scores, values, ["constant", "noise", "low end", "high end"])
    assert table["hypothesis"].tolist()[:2] == ["low end", "high end"]  # |rho| = 1 for both, in input order
    assert table["hypothesis"].iloc[-1] == "constant"
    assert dict(zip(table["hypothesis"], table["more_true_of"])) == {
        "low end": "low values", "high end": "high values", "noise": "high values", "constant": "neither"}
    row = table.set_index("hypothesis").loc["constant"]
    assert row["p_rho"] == 1.0 and not row["significant"]
    assert table.set_index("hypothesis").loc["high end", "significant"]
    with pytest.raises(InputError, match="2 hypotheses for 4"):
        rank_by_value(scores, values, ["a", "b"])


@pytest.mark.parametrize("module", ["visdiff.correlation_stats", "visdiff.tail_stats", "visdiff.report.scatter"])
def test_docstring_examples_hold(module):
    import doctest
    import importlib

    assert doctest.testmod(importlib.import_module(module)).failed == 0
