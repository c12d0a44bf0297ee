"""Rank hypotheses by how well their scores separate image set A from set B: pure tables.

AUROC orders the hypotheses (the paper found it ranks better than p-values or mean
differences); Welch's t-test (one-sided, A > B) with Benjamini-Hochberg q-values across the
hypotheses flags which separations are significant. Computing the scores is the scoring
stage's job (:mod:`visdiff.embeddings.scoring`); this module only turns scores into tables.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from visdiff import stats
from visdiff.errors import InputError

DEFAULT_ALPHA = 0.05

RESULT_COLUMNS = [
    "hypothesis", "auroc", "mean_a", "mean_b", "diff", "effect_size",
    "t", "p_value", "p_greater", "q_value", "significant",
]


def dedupe_phrases(phrases: Sequence[str]) -> list[str]:
    """Whitespace-collapsed phrases, first occurrence of each (case-insensitive), blanks dropped."""
    seen: set[str] = set()
    out: list[str] = []
    for phrase in phrases:
        text = " ".join(phrase.split())
        if text and text.lower() not in seen:
            seen.add(text.lower())
            out.append(text)
    return out


def clean_hypotheses(hypotheses: Sequence[str]) -> list[str]:
    """Stripped, non-empty, first occurrence of each (case- and whitespace-insensitive)."""
    if isinstance(hypotheses, str):
        hypotheses = [hypotheses]
    for h in hypotheses:
        if not isinstance(h, str):
            raise InputError(f"hypotheses must be strings, got {type(h).__name__}: {h!r}")
    out = dedupe_phrases(hypotheses)
    if not out:
        raise InputError("no hypotheses to rank (the list is empty or all blank)")
    return out


def format_p_value(p: float | None) -> str:
    """p/q-values for people: scientific below 0.001, 'n/a' when undefined."""
    if p is None or not math.isfinite(p):
        return "n/a"
    return f"{p:.2e}" if p < 1e-3 else f"{p:.3f}"


def separation_stats(scores_a, scores_b) -> dict[str, np.ndarray]:
    """:func:`visdiff.stats.separation_stats`, on the scores' device when they are tensors
    off the CPU (on the CPU numpy's threaded sorts are several times faster than torch's)."""
    # A torch tensor's device has a type; numpy arrays (device "cpu", a string) and lists have none.
    if getattr(getattr(scores_a, "device", None), "type", "cpu") != "cpu":
        from visdiff import stats_torch  # torch only when the scores already live in it

        return stats_torch.separation_stats(scores_a, scores_b)
    return stats.separation_stats(scores_a, scores_b)


def rank_scores(scores_a, scores_b, hypotheses: Sequence[str], *, alpha: float = DEFAULT_ALPHA) -> pd.DataFrame:
    """Rank hypotheses from precomputed scores.

    Parameters
    ----------
    scores_a, scores_b : array-like of shape (n_a, m) and (n_b, m)
        Score of every image of A and of B for each of the m hypotheses. Torch tensors on a
        GPU are ranked there (:mod:`visdiff.stats_torch`), with the same results.
    hypotheses : sequence of m str
    alpha : float
        False-discovery rate for the ``significant`` flag (q-value < alpha).

    Returns
    -------
    pandas.DataFrame sorted by ``auroc`` (descending), one row per hypothesis, columns
    ``hypothesis, auroc, mean_a, mean_b, diff, effect_size, t, p_value`` (two-sided Welch),
    ``p_greater`` (one-sided, A > B), ``q_value`` (BH over ``p_greater``), ``significant``.
    """
    if not 0 < alpha < 1:
        raise InputError(f"alpha must be in (0, 1), got {alpha}")
    welch = separation_stats(scores_a, scores_b)  # validates the scores
    hypotheses = [hypotheses] if isinstance(hypotheses, str) else list(hypotheses)
    if len(hypotheses) != len(welch["auroc"]):
        raise InputError(f"{len(hypotheses)} hypotheses for {len(welch['auroc'])} score columns")
    q = stats.bh_qvalues(welch["p_greater"])
    table = pd.DataFrame(
        {
            "hypothesis": hypotheses,
            "auroc": welch["auroc"],
            "mean_a": welch["mean_a"],
            "mean_b": welch["mean_b"],
            "diff": welch["mean_a"] - welch["mean_b"],
            "effect_size": welch["effect_size"],
            "t": welch["t"],
            "p_value": welch["p_two_sided"],
            "p_greater": welch["p_greater"],
            "q_value": q,
            "significant": np.nan_to_num(q, nan=1.0) < alpha,
        }
    )
    table = table.sort_values("auroc", ascending=False, kind="stable").reset_index(drop=True)
    table.attrs["alpha"] = alpha
    return table


def rank_directions(scores_a: np.ndarray, scores_b: np.ndarray, proposals: dict[str, list[str]], *,
                    alpha: float = DEFAULT_ALPHA) -> tuple[pd.DataFrame, list[int]]:
    """One ranked table over the hypotheses of each direction, and the score-column order of its rows.

    ``proposals`` maps a direction (``"A"``: more true of A, ``"B"``: more true of B) to its
    phrases, whose score columns follow each other in that order. With more than one
    direction the table gets a ``direction`` column; on ``"B"`` rows the statistics measure B
    over A (q-values per direction) while ``mean_a``/``mean_b`` stay the means on A and on B.
    """
    tables, columns, offset = [], [], 0
    for direction, phrases in proposals.items():
        block = slice(offset, offset + len(phrases))
        if direction == "B":
            table = rank_scores(scores_b[:, block], scores_a[:, block], phrases, alpha=alpha)
            table = table.rename(columns={"mean_a": "mean_b", "mean_b": "mean_a"})[list(table.columns)]
        else:
            table = rank_scores(scores_a[:, block], scores_b[:, block], phrases, alpha=alpha)
        if len(proposals) > 1:
            table.insert(1, "direction", direction)
        position = {h: i for i, h in enumerate(phrases)}
        columns += [offset + position[h] for h in table["hypothesis"]]
        tables.append(table)
        offset += len(phrases)
    table = pd.concat(tables, ignore_index=True) if len(tables) > 1 else tables[0]
    table.attrs["alpha"] = alpha
    return table, columns
