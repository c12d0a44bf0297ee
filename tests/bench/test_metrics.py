"""Acc@k and the per-split summary."""

from __future__ import annotations

import math

import pytest

from visdiffbench import acc_at_k, summarize, summary_markdown


def test_acc_at_k_is_the_best_score_among_the_top_k():
    scores = [0.0, 0.5, None, 1.0, 0.0, 1.0]
    assert [acc_at_k(scores, k) for k in (1, 2, 3, 4)] == [0.0, 0.5, 0.5, 1.0]
    assert acc_at_k([], 5) == 0.0 and acc_at_k([None], 1) == 0.0
    with pytest.raises(ValueError, match="k must be at least 1"):
        acc_at_k(scores, 0)


def _ok(split, scores):
    return {"split": split, "status": "ok", "judge_scores": scores}


def test_summary_per_split_with_paper_numbers_skips_and_combined_imagenet():
    records = [
        _ok("easy", [1.0, 0.0]), _ok("easy", [0.0, 0.5, 0.0, 0.0, 0.0, 1.0]),
        {"split": "easy", "status": "skipped", "judge_scores": [], "reason": "too few images"},
        _ok("imagenetr", [0.5]), _ok("imagenetstar", [None, 1.0]), _ok("devbench", [0.0]),
    ]
    table = summarize(records).set_index("split")
    assert list(table.index) == ["easy", "imagenetr", "imagenetstar", "devbench", "imagenetr+imagenetstar"]
    easy = table.loc["easy"]
    assert (easy["pairs"], easy["evaluated"], easy["skipped"]) == (3, 2, 1)
    assert easy["acc@1"] == 0.5 and easy["acc@5"] == 0.75  # the 1.0 at rank 6 is outside the top 5
    assert (easy["paper_acc@1"], easy["paper_acc@5"]) == (0.88, 0.99)
    both = table.loc["imagenetr+imagenetstar"]
    assert (both["pairs"], both["acc@1"], both["acc@5"], both["unjudged"]) == (2, 0.25, 0.75, 1)
    assert math.isnan(table.loc["devbench", "paper_acc@1"])
    markdown = summary_markdown(summarize(records))
    assert "| devbench | 1 | 1 | 0 | 0.00 | 0.00 | – | – | 0 |" in markdown
