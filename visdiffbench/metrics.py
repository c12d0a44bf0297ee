"""Benchmark metrics: Acc@k per pair and per split, beside the paper's numbers.

A judge gives each hypothesis a score in {0, 0.5, 1}. Acc@k of a pair is the best score
among its top k ranked hypotheses (0 when it has none); a split's Acc@k is the mean over
its evaluated pairs. Higher is better.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import pandas as pd

# VisDiff (BLIP-2 captions + GPT-4 proposer + CLIP ViT-bigG-14 ranker), paper Table 1:
# split -> (Acc@1, Acc@5). The paper reports ImageNet-R and ImageNet* as one 37-pair column.
PAPER_RESULTS: dict[str, tuple[float, float]] = {
    "imagenetr": (0.78, 0.96),
    "imagenetstar": (0.78, 0.96),
    "imagenetr+imagenetstar": (0.78, 0.96),
    "easy": (0.88, 0.99),
    "medium": (0.75, 0.86),
    "hard": (0.61, 0.80),
}
PAPER_NOTE = (
    "Paper columns: VisDiff (BLIP-2 captions, GPT-4 proposer, CLIP ViT-bigG-14 ranker) scored by the GPT-4 "
    "rubric judge, paper Table 1; the paper reports ImageNet-R and ImageNet* as one 37-pair column. "
    "Numbers from another judge (the offline one) are not directly comparable."
)
COMBINED_IMAGENET = ("imagenetr", "imagenetstar")
SUMMARY_COLUMNS = ["split", "pairs", "evaluated", "skipped", "acc@1", "acc@5", "paper_acc@1", "paper_acc@5", "unjudged"]


def acc_at_k(scores: Sequence[float | None], k: int) -> float:
    """Best judge score among the first ``k`` hypotheses (ranked order); 0 when there are none.

    An unparseable judgement (``None``) counts as 0 here; summaries count them separately.

    >>> acc_at_k([0.0, 0.5, 1.0], 1), acc_at_k([0.0, 0.5, 1.0], 2), acc_at_k([], 5)
    (0.0, 0.5, 0.0)
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    return max((s for s in scores[:k] if s is not None), default=0.0)


def summarize(records: Iterable[Mapping], *, paper: Mapping[str, tuple[float, float]] = PAPER_RESULTS) -> pd.DataFrame:
    """One row per split (in order of appearance) from per-pair records.

    Each record needs ``split``, ``status`` (``"ok"`` or ``"skipped"``) and, when ok,
    ``judge_scores`` (the judged top hypotheses in ranked order, ``None`` for an unparseable
    answer). When both ImageNet splits are present a combined row is added, as the paper
    reports them together. Paper columns are NaN for splits the paper does not have.
    """
    by_split: dict[str, list[Mapping]] = {}
    for record in records:
        by_split.setdefault(record["split"], []).append(record)
    if all(s in by_split for s in COMBINED_IMAGENET):
        by_split["+".join(COMBINED_IMAGENET)] = [r for s in COMBINED_IMAGENET for r in by_split[s]]
    rows = []
    for split, group in by_split.items():
        done = [r for r in group if r["status"] == "ok"]
        paper_1, paper_5 = paper.get(split, (math.nan, math.nan))
        rows.append({
            "split": split,
            "pairs": len(group),
            "evaluated": len(done),
            "skipped": len(group) - len(done),
            "acc@1": _mean([acc_at_k(r["judge_scores"], 1) for r in done]),
            "acc@5": _mean([acc_at_k(r["judge_scores"], 5) for r in done]),
            "paper_acc@1": paper_1,
            "paper_acc@5": paper_5,
            "unjudged": sum(s is None for r in done for s in r["judge_scores"][:5]),
        })
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def summary_markdown(table: pd.DataFrame) -> str:
    """The summary as a GitHub-flavoured markdown table (NaN shown as an en dash)."""
    header = "| " + " | ".join(table.columns) + " |"
    rule = "|" + "|".join("---" if c == "split" else "---:" for c in table.columns) + "|"
    lines = [header, rule]
    for row in table.itertuples(index=False):
        lines.append("| " + " | ".join(_cell(v) for v in row) + " |")
    return "\n".join(lines) + "\n"


def _cell(value) -> str:
    if isinstance(value, float):
        return "–" if math.isnan(value) else f"{value:.2f}"
    return str(value)


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else math.nan
