"""Near-duplicate proposals merged after ranking: the best-ranked wording kept, the others
listed as its variants, per direction; ``--no-merge`` keeps every row."""

from __future__ import annotations

import hashlib
import io
import json

import numpy as np
import pandas as pd
import pytest
import torch

import visdiff
from tests.cli_helpers import run_cli
from visdiff.cli import output
from visdiff.errors import InputError
from visdiff.ranking import merge_near_duplicates
from visdiff.scorers import create_scorer
from tests.fake_openai import Reply

pytest_plugins = ["tests.fake_openai"]
# Paraphrases the offline scorer's text embeddings put at cosine >= 0.98 (benchmarks/bench_merge_threshold.py).
GROUPS = [["dogs", "a dog", "pet dogs"], ["musical instruments", "instruments for making music"], ["blurry photos"]]
ANSWER = "\n".join(f"- {phrase}" for group in GROUPS for phrase in group)


def table_of(hypotheses, directions=None) -> pd.DataFrame:
    table = pd.DataFrame({"hypothesis": hypotheses, "auroc": np.linspace(0.9, 0.6, len(hypotheses))})
    if directions is not None:
        table.insert(1, "direction", directions)
    return table


def test_best_ranked_wording_kept_without_chains():
    # 0~1 and 1~2 are alike, 0 and 2 are not: 1 merges into 0, and 2 (no chain through 1) stays.
    similarity = np.array([[1.0, 0.9, 0.1, 0.0], [0.9, 1.0, 0.9, 0.0], [0.1, 0.9, 1.0, 0.95], [0.0, 0.0, 0.95, 1.0]])
    merged, kept = merge_near_duplicates(table_of(["w", "x", "y", "z"]), similarity, 0.85)
    assert kept == [0, 2] and list(merged["hypothesis"]) == ["w", "y"]
    assert list(merged["merged"]) == [["x"], ["z"]] and list(merged["auroc"]) == [0.9, 0.7]


def test_rows_of_different_directions_never_merge():
    similarity = np.ones((3, 3))
    merged, kept = merge_near_duplicates(table_of(["dogs", "a dog", "dogs"], ["A", "A", "B"]), similarity, 0.85)
    assert kept == [0, 2] and list(merged["direction"]) == ["A", "B"] and list(merged["merged"]) == [["a dog"], []]


def test_similarity_must_match_the_table():
    with pytest.raises(ValueError, match="similarity has shape \\(2, 2\\) for 3 rows"):
        merge_near_duplicates(table_of(["a", "b", "c"]), np.eye(2), 0.85)


@pytest.mark.parametrize("value", [1.5, -2, True, "high", float("nan")])
def test_merge_threshold_is_checked(value):
    with pytest.raises(InputError, match="merge_threshold must be a cosine similarity in \\[-1, 1\\]"):
        visdiff.RunOptions(merge_threshold=value)


def compare_args(image_dirs, server, *extra) -> list[str]:
    a, b = image_dirs
    return ["compare", str(a), str(b), "--llm", "fake-model", "--base-url", server.base_url, "--rounds", "1",
            "--samples", "3", "-q", *extra]


def test_compare_merges_paraphrased_proposals(image_dirs, fake_openai, monkeypatch, tmp_path):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    fake_openai.respond = lambda request: Reply(ANSWER)
    unmerged = run_cli(*compare_args(image_dirs, fake_openai, "--no-merge", "--json", "-"))
    assert unmerged.exit_code == 0, unmerged.output
    rows = {r["hypothesis"]: r for r in json.loads(unmerged.stdout)["results"]}
    order = list(rows)
    assert sorted(order) == sorted(p for group in GROUPS for p in group)

    monkeypatch.setattr(output.stdout, "width", 300)  # one line per table row
    result = run_cli(*compare_args(image_dirs, fake_openai, "--all", "--out", str(tmp_path / "out")))
    assert result.exit_code == 0, result.output
    payload = json.loads((tmp_path / "out" / "results.json").read_text())
    merged = {r["hypothesis"]: r for r in payload["results"]}
    # Per group: the wording ranked best unmerged is kept, with its own statistics; the rest are its variants.
    expected = {}
    for group in GROUPS:
        ranked = sorted(group, key=order.index)
        expected[ranked[0]] = ranked[1:]
    assert {h: r["merged"] for h, r in merged.items()} == expected
    for hypothesis, row in merged.items():
        assert row["auroc"] == rows[hypothesis]["auroc"] and row["q_value"] == rows[hypothesis]["q_value"]
    assert payload["attrs"]["merge"]["merged"] == 3 and payload["attrs"]["merge"]["threshold"] == 0.85
    assert np.shape(payload["scores"]["a"]) == (6, 3)
    csv = pd.read_csv(io.StringIO((tmp_path / "out" / "results.csv").read_text()), keep_default_na=False)
    assert dict(zip(csv["hypothesis"], csv["merged"])) == {h: "; ".join(v) for h, v in expected.items()}
    dogs = next(h for h in expected if h in GROUPS[0])
    assert f"also: {'; '.join(expected[dogs])}" in (tmp_path / "out" / "report.html").read_text()
    assert f"{dogs} (also: {'; '.join(expected[dogs])})" in result.stdout


def test_cli_merge_threshold_out_of_range_exits_2(image_dirs):
    a, b = image_dirs
    result = run_cli("compare", str(a), str(b), "--merge-threshold", "2")
    assert result.exit_code == 2 and "invalid value for '--merge-threshold': must be a cosine similarity in [-1, 1], got 2.0" in \
        result.output


class PairwiseStub:
    """A pairwise scorer (no text embeddings) with fixed scores per (image, text)."""

    spec = cache_id = "pairwise-stub"

    def prepare(self, items):
        return {}

    def score_pairs(self, pairs):
        return np.array([int(hashlib.sha256(f"{item.key}{text}".encode()).hexdigest()[:4], 16) / 65535
                         for item, text in pairs])


class FixedProposer:
    spec = "fixed"

    def __init__(self, phrases=GROUPS[0]):
        self.phrases = phrases

    def propose(self, context):
        return list(self.phrases)

    def describe(self):
        return {"spec": self.spec}


def test_pairwise_scorer_merges_nothing_and_says_why(image_dirs):
    result = visdiff.compare(*image_dirs, scorer=PairwiseStub(), proposer=FixedProposer(), show_progress=False)
    assert sorted(result.table["hypothesis"]) == sorted(GROUPS[0]) and "merged" not in result.table
    assert result.table.attrs["merge"] == {"threshold": 0.85, "merged": 0, "note": "pairwise scorer: no text embeddings"}


class RedBlueScorer:
    """Image embedding (1, red - blue); texts close in text space whose scores part on the images."""

    spec = cache_id = "red-blue-stub"
    device = torch.device("cpu")
    TEXTS = {"reddish images": (1.0, 0.2), "bluish images": (1.0, -0.2)}  # cosine 0.92

    def __init__(self, tiny_clip_weights):
        self.preprocess = create_scorer(tiny_clip_weights, device="cpu").preprocess

    def encode_images(self, pixels):
        return torch.stack([torch.ones(len(pixels)), pixels[:, 0].mean((1, 2)) - pixels[:, 2].mean((1, 2))], dim=1)

    def encode_texts(self, texts):
        return torch.tensor([self.TEXTS[t] for t in texts])

    def score(self, image_embeddings, text_embeddings):
        return image_embeddings @ text_embeddings.T


def test_phrases_alike_in_text_space_whose_scores_part_are_not_merged(image_dirs, tiny_clip_weights):
    phrases = list(RedBlueScorer.TEXTS)
    result = visdiff.compare(*image_dirs, scorer=RedBlueScorer(tiny_clip_weights), proposer=FixedProposer(phrases),
                             show_progress=False, use_cache=False)
    assert sorted(result.table["hypothesis"]) == sorted(phrases) and result.table.attrs["merge"]["merged"] == 0
    assert list(result.table["merged"]) == [[], []]
