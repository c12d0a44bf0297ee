"""Why a benchmark pair was missed: the ground truth as the run's ranker sees it.

For every evaluated pair the ground-truth phrase (the name of set A) is scored with the run's
scorer like any hypothesis, giving its AUROC and the rank it would have had among the
proposals; the judge, asked about every proposal, says which ones match it. A pair is a
*miss* when no fully matching hypothesis (judge score 1) is in the top ``top_k``; a miss is

- ``ranker_blind``: the ground truth's own AUROC is within :data:`BLIND_MARGIN` of 0.5, so
  this ranker cannot separate the sets by it, whatever is proposed (checked first);
- ``never_proposed``: no proposal matches it;
- ``ranked_low``: a proposal matches it, but ranks below ``top_k``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import pandas as pd

BLIND_MARGIN = 0.1
CATEGORIES = ("hit", "never_proposed", "ranked_low", "ranker_blind")
DIAGNOSIS_COLUMNS = ["split", "evaluated", "hits", "misses", "never_proposed", "ranked_low", "ranker_blind",
                     "mean_gt_auroc"]


def diagnose(*, gt_phrase: str, gt_auroc: float, ranked_aurocs: Sequence[float], match_scores: Sequence[float | None],
             top_k: int) -> dict:
    """The diagnosis of one pair.

    Parameters
    ----------
    gt_phrase, gt_auroc
        The ground-truth phrase and its AUROC with the run's scorer.
    ranked_aurocs : sequence of float
        AUROC of each ranked hypothesis, best first.
    match_scores : sequence of float or None
        The judge's score of each ranked hypothesis, same order (None: unjudged).
    top_k : int
        Hypotheses that count for accuracy.

    >>> diagnose(gt_phrase="dogs", gt_auroc=0.9, ranked_aurocs=[0.95, 0.8, 0.7], match_scores=[0, 0, 1], top_k=2)["category"]
    'ranked_low'
    """
    matches = [rank for rank, score in enumerate(match_scores, start=1) if score == 1.0]
    blind = not math.isnan(gt_auroc) and abs(gt_auroc - 0.5) <= BLIND_MARGIN
    if matches and matches[0] <= top_k:
        category = "hit"
    elif math.isnan(gt_auroc) or blind:
        category = "ranker_blind"
    elif not matches:
        category = "never_proposed"
    else:
        category = "ranked_low"
    return {
        "gt_phrase": gt_phrase,
        "gt_auroc": gt_auroc,
        # Ties go in the ground truth's favour: the rank it would have had at best.
        "gt_rank": 1 + sum(auroc > gt_auroc for auroc in ranked_aurocs),
        "n_ranked": len(ranked_aurocs),
        "matching_ranks": matches,
        "category": category,
    }


def diagnosis_summary(records: Iterable[Mapping]) -> pd.DataFrame:
    """Per split (then ``all``): evaluated pairs, hits, misses by category, mean ground-truth AUROC."""
    by_split: dict[str, list[Mapping]] = {}
    for record in records:
        if record.get("status") == "ok" and record.get("diagnosis"):
            by_split.setdefault(record["split"], []).append(record["diagnosis"])
    if len(by_split) > 1:
        by_split["all"] = [d for group in list(by_split.values()) for d in group]
    rows = []
    for split, group in by_split.items():
        counts = {c: sum(d["category"] == c for d in group) for c in CATEGORIES}
        aurocs = [d["gt_auroc"] for d in group if d["gt_auroc"] is not None and not math.isnan(d["gt_auroc"])]
        rows.append({"split": split, "evaluated": len(group), "hits": counts["hit"], "misses": len(group) - counts["hit"],
                     "never_proposed": counts["never_proposed"], "ranked_low": counts["ranked_low"],
                     "ranker_blind": counts["ranker_blind"],
                     "mean_gt_auroc": sum(aurocs) / len(aurocs) if aurocs else math.nan})
    return pd.DataFrame(rows, columns=DIAGNOSIS_COLUMNS)
