"""Rank hypotheses by how well their scores separate image set A from set B: pure tables.

AUROC orders the hypotheses (the paper found it ranks better than p-values or mean
differences); the Mann-Whitney U test, whose statistic AUROC is (one-sided, A > B), with
Benjamini-Hochberg q-values across the hypotheses flags which separations are significant, so
the flag never disagrees with the order. Welch's t, the paper's statistic, is kept beside it. Computing the scores is the scoring
stage's job (:mod:`visdiff.embeddings.scoring`); this module only turns scores into tables.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from visdiff import stats
from visdiff.errors import InputError

DEFAULT_ALPHA = 0.05
# Cosine similarity of text embeddings at which two proposals are one idea: with the offline
# scorer it merges 22 of 28 paraphrase pairs and none of 26 different ideas, the closest of
# which ("dogs" / "mammals") is at 0.74 (benchmarks/bench_merge_threshold.py).
DEFAULT_MERGE_THRESHOLD = 0.85
# Two phrases whose scores over a run's images share less than a quarter of their variance
# (r < 0.5) are not one idea, however close their texts embed.
MERGE_MIN_SCORE_CORRELATION = 0.5
# Statistics of the proposal split kept beside the held-out ones (``--holdout``), as ``<name>_proposal``.
PROPOSAL_SPLIT_COLUMNS = ("auroc", "p_greater", "q_value", "significant")

RESULT_COLUMNS = [
    "hypothesis", "auroc", "auroc_low", "auroc_high", "mean_a", "mean_b", "diff", "effect_size",
    "p_greater", "q_value", "significant", "t", "p_welch", "correct_delta", "favours", "constant",
]
# The reference's ``correct_delta``: an image "shows" a hypothesis when its score (a CLIP cosine
# similarity) exceeds this; the column is the share of A minus the share of B that do.
CORRECT_DELTA_THRESHOLD = 0.3


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
    if not isinstance(hypotheses, Iterable):
        raise InputError(f"hypotheses must be a list of strings, got {type(hypotheses).__name__}")
    hypotheses = list(hypotheses)
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


def share_above(scores, threshold: float) -> np.ndarray:
    """Per column, the share of rows (images) scoring above ``threshold`` (tensors on their
    device); 1-d scores are one column."""
    if hasattr(scores, "detach"):
        return (scores.reshape(len(scores), -1) > threshold).double().mean(dim=0).cpu().numpy()
    scores = np.asarray(scores)
    return (scores.reshape(len(scores), -1) > threshold).mean(axis=0)


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
    ``hypothesis, auroc, auroc_low, auroc_high`` (its 95% interval, :func:`visdiff.stats.auroc_interval`),
    ``mean_a, mean_b, diff, effect_size, p_greater`` (one-sided Mann-Whitney U test, A > B),
    ``q_value`` (BH over ``p_greater``), ``significant`` (q < alpha), ``t, p_welch`` (Welch's t
    and its one-sided p: the paper's statistic, not used for the flag), ``correct_delta`` (the
    reference's: share of A scoring above 0.3 minus that of B; meant for CLIP cosines), ``favours`` ("A", "B",
    or "neither" at AUROC 0.5: the set that scores higher) and ``constant`` (one score on
    every image of both sets: the hypothesis says nothing, p = 1).
    """
    if not 0 < alpha < 1:
        raise InputError(f"alpha must be in (0, 1), got {alpha}")
    found = separation_stats(scores_a, scores_b)  # validates the scores
    hypotheses = [hypotheses] if isinstance(hypotheses, str) else list(hypotheses)
    if len(hypotheses) != len(found["auroc"]):
        raise InputError(f"{len(hypotheses)} hypotheses for {len(found['auroc'])} score columns")
    found["q_value"] = stats.bh_qvalues(found["p_greater"])
    found["correct_delta"] = share_above(scores_a, CORRECT_DELTA_THRESHOLD) - share_above(scores_b, CORRECT_DELTA_THRESHOLD)
    # Rows by AUROC, descending, ties in hypothesis order (a stable sort of the negated AUROC;
    # U is finite, so AUROC is never NaN); sorted here, as arrays, not by pandas afterwards.
    order = np.argsort(-found["auroc"], kind="stable")
    found = {key: value[order] for key, value in found.items()}
    auroc = found["auroc"]
    table = pd.DataFrame({
        "hypothesis": [hypotheses[i] for i in order],
        **{key: found[key] for key in ("auroc", "auroc_low", "auroc_high", "mean_a", "mean_b")},
        "diff": found["mean_a"] - found["mean_b"],
        **{key: found[key] for key in ("effect_size", "p_greater", "q_value")},
        "significant": found["q_value"] < alpha,
        "t": found["t"],
        "p_welch": found["p_welch"],
        "correct_delta": found["correct_delta"],
        "favours": np.where(auroc > 0.5, "A", np.where(auroc < 0.5, "B", "neither")),
        "constant": found["constant"],
    })
    table.attrs["alpha"] = alpha
    return table


def rank_directions(scores_a: np.ndarray, scores_b: np.ndarray, proposals: dict[str, list[str]], *,
                    alpha: float = DEFAULT_ALPHA) -> tuple[pd.DataFrame, list[int]]:
    """One ranked table over the hypotheses of each direction, and the score-column order of its rows.

    ``proposals`` maps a direction (``"A"``: more true of A, ``"B"``: more true of B) to its
    phrases, whose score columns follow each other in that order. With more than one
    direction the table gets a ``direction`` column; on ``"B"`` rows the statistics measure B
    over A (q-values per direction) while ``mean_a``/``mean_b`` stay the means on A and on B
    and ``favours`` names the set that scores higher.
    """
    tables, columns, offset = [], [], 0
    for direction, phrases in proposals.items():
        block = slice(offset, offset + len(phrases))
        if direction == "B":
            table = rank_scores(scores_b[:, block], scores_a[:, block], phrases, alpha=alpha)
            table = table.rename(columns={"mean_a": "mean_b", "mean_b": "mean_a"})[list(table.columns)]
            table["favours"] = table["favours"].map({"A": "B", "B": "A", "neither": "neither"})
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


def add_proposal_split(held_out: pd.DataFrame, proposal: pd.DataFrame) -> pd.DataFrame:
    """The held-out ranked table with the proposal split's (in-sample) statistics of each
    hypothesis beside its own, as ``auroc_proposal``, ``p_greater_proposal``... (same rows and order)."""
    keys = [c for c in ("direction", "hypothesis") if c in held_out.columns]
    extra = proposal[[*keys, *PROPOSAL_SPLIT_COLUMNS]].rename(columns={c: f"{c}_proposal" for c in PROPOSAL_SPLIT_COLUMNS})
    table = held_out.merge(extra, on=keys, how="left", validate="one_to_one")
    table.attrs = dict(held_out.attrs)
    return table


def merge_near_duplicates(table: pd.DataFrame, similarity: np.ndarray, threshold: float) -> tuple[pd.DataFrame, list[int]]:
    """Merge rows that say the same thing, keeping the best-ranked wording.

    ``similarity`` is the (m, m) similarity of the table's m rows, in row order. Going down the
    ranking, each row not yet merged is kept and takes every later row of its direction whose
    similarity to it is at least ``threshold`` (no chains: a merged row takes nothing). Returns
    the kept rows, with a ``merged`` column listing the wordings each took, and their positions.
    Statistics stay those of the kept wording; q-values stay over every hypothesis tested.
    """
    similarity = np.asarray(similarity, dtype=np.float64)
    if similarity.shape != (len(table), len(table)):
        raise ValueError(f"similarity has shape {similarity.shape} for {len(table)} rows")
    directions = table["direction"].to_numpy() if "direction" in table.columns else np.zeros(len(table))
    taken = np.zeros(len(table), bool)
    kept, merged = [], []
    for i in range(len(table)):
        if taken[i]:
            continue
        later = np.arange(i + 1, len(table))
        into = later[~taken[later] & (directions[later] == directions[i]) & (similarity[i, later] >= threshold)]
        taken[into] = True
        kept.append(i)
        merged.append(table["hypothesis"].iloc[into].tolist())
    out = table.iloc[kept].reset_index(drop=True)
    out["merged"] = merged
    out.attrs = dict(table.attrs)
    return out, kept
