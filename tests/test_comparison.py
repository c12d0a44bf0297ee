"""visdiff.Comparison: embeddings loaded once, re-ranking embeds only new text, results equal
the one-shot API's and the exact statistics; the torch statistics equal the numpy ones."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

import visdiff
from tests.cli_helpers import run_cli
from tests.fake_openai import Reply, fake_openai  # noqa: F401
from visdiff import stats, stats_torch
from visdiff.embeddings.scoring import Scoring
from visdiff.errors import InputError
from visdiff.ranking import rank_directions, rank_scores, separation_stats
from visdiff.scorers import create_scorer

STAT_KEYS = ["auroc", "auroc_low", "auroc_high", "p_greater", "t", "df", "p_welch", "mean_a", "mean_b", "effect_size",
             "constant"]


def assert_same_stats(expected: dict, got: dict) -> None:
    assert sorted(expected) == sorted(got)
    for key in STAT_KEYS:
        np.testing.assert_allclose(got[key], expected[key], rtol=1e-9, atol=1e-9, err_msg=key)
        assert np.array_equal(np.isnan(got[key]), np.isnan(expected[key])), key


def score_matrices(kind: str, n_a: int = 300, n_b: int = 250, m: int = 7, dtype=np.float32):
    rng = np.random.default_rng({"random": 1, "tied": 2, "constant": 3}[kind])
    a = rng.standard_normal((n_a, m)) + np.linspace(-0.5, 0.5, m)
    b = rng.standard_normal((n_b, m))
    if kind == "tied":  # few distinct values, shared by both sets
        a, b = np.round(a * 2) / 2, np.round(b * 2) / 2
    if kind == "constant":
        a[:, 0], b[:, 0] = 0.25, 0.25  # one score everywhere: p = 1, Welch's t undefined
        a[:, 1] = 0.5  # constant in A only: still a test
    return a.astype(dtype), b.astype(dtype)


@pytest.mark.parametrize("kind", ["random", "tied", "constant"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_torch_statistics_equal_the_numpy_ones(kind, dtype):
    a, b = score_matrices(kind, dtype=dtype)
    expected = stats.separation_stats(a, b)
    assert_same_stats(expected, stats_torch.separation_stats(torch.from_numpy(a), torch.from_numpy(b)))
    if kind == "constant":
        assert np.isnan(expected["t"][0]) and expected["p_greater"][0] == 1.0 and np.isfinite(expected["t"][1])
        assert expected["constant"].tolist()[:2] == [True, False]


def test_torch_statistics_match_sklearn_auroc_with_ties():
    from sklearn.metrics import roc_auc_score

    a, b = score_matrices("tied")
    got = stats_torch.separation_stats(torch.from_numpy(a), torch.from_numpy(b))["auroc"]
    labels = np.r_[np.ones(len(a)), np.zeros(len(b))]
    expected = [roc_auc_score(labels, np.r_[a[:, j], b[:, j]]) for j in range(a.shape[1])]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


def test_torch_statistics_of_half_precision_and_one_column():
    a, b = score_matrices("random", m=1)
    got = stats_torch.separation_stats(torch.from_numpy(a[:, 0]).half(), torch.from_numpy(b[:, 0]).half())
    expected = stats.separation_stats(a[:, 0].astype(np.float16), b[:, 0].astype(np.float16))
    assert_same_stats(expected, got)


@pytest.mark.parametrize("bad_a, bad_b, message", [
    (torch.zeros(5, 2), torch.zeros(5, 3), "hypotheses"),
    (torch.zeros(1, 2), torch.zeros(5, 2), "at least 2 images"),
    (torch.tensor([[0.0], [float("nan")]]), torch.zeros(3, 1), "NaN"),
    (torch.zeros(2, 2, 2), torch.zeros(2, 2), "1-D or 2-D"),
])
def test_torch_statistics_refuse_bad_scores(bad_a, bad_b, message):
    with pytest.raises(ValueError, match=message):
        stats_torch.separation_stats(bad_a, bad_b)


def test_cpu_tensors_take_the_numpy_path():
    a, b = score_matrices("random")
    assert_same_stats(stats.separation_stats(a, b), separation_stats(torch.from_numpy(a), torch.from_numpy(b)))


class CountingScorer:
    """A built scorer that counts the texts it embeds."""

    def __init__(self, inner):
        self.inner = inner
        self.spec, self.cache_id, self.device = inner.spec, inner.cache_id, inner.device
        self.texts: list[str] = []
        self.image_batches = 0

    @property
    def preprocess(self):
        return self.inner.preprocess

    def encode_images(self, pixels):
        self.image_batches += 1
        return self.inner.encode_images(pixels)

    def encode_texts(self, texts):
        self.texts += list(texts)
        return self.inner.encode_texts(texts)

    def score(self, image_embeddings, text_embeddings):
        return self.inner.score(image_embeddings, text_embeddings)


@pytest.fixture
def counting_scorer(tiny_clip_weights):
    return CountingScorer(create_scorer(tiny_clip_weights, device="cpu"))


def reference_table(image_dirs, scorer_spec, hypotheses) -> pd.DataFrame:
    """The table from scores computed apart from any Comparison, by a scoring stage of its own
    (on the same cache: encoding in other batches could move embeddings by a float16 step)."""
    scoring = Scoring(scorer_spec, cache=visdiff.RunOptions().cache_root(), device="cpu")
    sets = [visdiff.load_image_set(d) for d in image_dirs]
    scores_a, scores_b = (scoring.score(s, hypotheses) for s in sets)
    return rank_scores(scores_a, scores_b, hypotheses)


def test_rank_equals_the_exact_statistics_and_rerank_embeds_only_new_text(
        image_dirs, counting_scorer, tiny_clip_weights):
    a, b = image_dirs
    comparison = visdiff.Comparison(a, b, scorer=counting_scorer)
    assert comparison.embeddings("a").dtype == torch.float32 and comparison.device.type == "cpu"
    assert counting_scorer.image_batches > 0 and counting_scorer.texts == []
    first = comparison.rank(["reddish images", "bluish images"])
    image_batches = counting_scorer.image_batches
    later = comparison.rank(["bluish images", "noisy images", "reddish images", "dark pictures"])

    assert counting_scorer.texts == ["reddish images", "bluish images", "noisy images", "dark pictures"]
    assert counting_scorer.image_batches == image_batches  # no image embedded again
    expected = reference_table(image_dirs, tiny_clip_weights, ["bluish images", "noisy images", "reddish images",
                                                              "dark pictures"])
    pd.testing.assert_frame_equal(later, expected, check_frame_type=False, check_exact=False, rtol=1e-9, atol=1e-9)
    assert isinstance(later, visdiff.RankedTable) and isinstance(later, pd.DataFrame)
    assert later.attrs["n_a"] == 6 and later.attrs["scorer"] == tiny_clip_weights and later.attrs["alpha"] == 0.05
    both = first.merge(later, on="hypothesis")
    assert np.array_equal(both["auroc_x"], both["auroc_y"]) and len(both) == 2


def test_rerank_writes_new_text_rows_while_it_scores_and_reports_a_failed_write(
        image_dirs, counting_scorer, monkeypatch):
    import threading

    from visdiff.embeddings.cache import EmbeddingCache

    comparison = visdiff.Comparison(*image_dirs, scorer=counting_scorer)
    scored = threading.Event()
    real_score, real_add = counting_scorer.score, EmbeddingCache.add
    monkeypatch.setattr(counting_scorer, "score", lambda *args: (scored.set(), real_score(*args))[1])
    write_saw_scoring = []

    def add(store, keys, rows):
        # Written before the scoring (the file syncs on the critical path), this would wait in vain.
        write_saw_scoring.append(scored.wait(timeout=5))
        real_add(store, keys, rows)

    monkeypatch.setattr(EmbeddingCache, "add", add)
    table = comparison.rank(["reddish images"])
    assert write_saw_scoring == [True] and len(table) == 1
    # The rows are in the cache when rank returns: another run embeds nothing.
    scoring = Scoring(counting_scorer, cache=visdiff.RunOptions().cache_root())
    scoring.encode_texts(["reddish images"])
    assert counting_scorer.texts == ["reddish images"]

    def full_disk(store, keys, rows):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(EmbeddingCache, "add", full_disk)
    with pytest.raises(OSError, match="No space left"):
        comparison.rank(["bluish images"])


def test_visdiff_rank_is_a_comparison_rank(image_dirs, tiny_clip_weights):
    a, b = image_dirs
    hypotheses = ["reddish images", "bluish images", "noisy images"]
    one_shot = visdiff.rank(hypotheses, a, b, scorer=tiny_clip_weights, device="cpu")
    kept = visdiff.Comparison(a, b, scorer=tiny_clip_weights, device="cpu").rank(hypotheses)
    pd.testing.assert_frame_equal(one_shot, kept)
    assert type(one_shot) is visdiff.RankedTable
    assert one_shot.attrs["embeddings"]["encoded"] == 12 and kept.attrs["embeddings"]["cached"] == 12
    assert {**one_shot.attrs, "embeddings": None} == {**kept.attrs, "embeddings": None}
    # Tables derived from it are plain DataFrames.
    assert type(one_shot.head(2)) is pd.DataFrame


class FixedProposer:
    """A built proposer that returns the same phrases for either direction."""

    spec = "fixed"

    def __init__(self, phrases):
        self.phrases = phrases
        self.calls = 0

    def propose(self, context):
        self.calls += 1
        return list(self.phrases)

    def describe(self):
        return {"spec": self.spec}


@pytest.mark.parametrize("both_directions", [False, True])
def test_compare_reuses_the_embeddings_and_equals_the_one_shot_api(image_dirs, counting_scorer, both_directions):
    a, b = image_dirs
    phrases = ["reddish images", "bluish images", "noisy images"]
    # Unmerged, so the table is rank_directions' own (merging has its tests in test_merge.py).
    comparison = visdiff.Comparison(a, b, scorer=counting_scorer, proposer=FixedProposer(phrases),
                                    both_directions=both_directions, merge=False)
    image_batches = counting_scorer.image_batches
    result = comparison.compare()
    assert counting_scorer.image_batches == image_batches
    one_shot = visdiff.compare(a, b, scorer=counting_scorer, proposer=FixedProposer(phrases),
                               both_directions=both_directions, merge=False)
    pd.testing.assert_frame_equal(result.table, one_shot.table)
    np.testing.assert_array_equal(result.scores_a, one_shot.scores_a)

    scores = [np.asarray(t) for t in comparison.scores(phrases * (2 if both_directions else 1))]
    proposals = {"A": phrases, "B": phrases} if both_directions else {"A": phrases}
    table, columns = rank_directions(*scores, proposals)
    pd.testing.assert_frame_equal(result.table, table)
    np.testing.assert_array_equal(result.scores_b, scores[1][:, columns])
    assert {"load_images", "embed", "score", "rank", "total"} <= set(result.timings)
    assert result.config["n_proposals"] == ({"A": 3, "B": 3} if both_directions else {"A": 3})


def test_images_highest_and_lowest_first(image_dirs, tiny_clip_weights):
    a, b = image_dirs
    comparison = visdiff.Comparison(a, b, scorer=tiny_clip_weights, device="cpu")
    scores_b = np.asarray(comparison.scores(["bluish images"])[1])[:, 0]
    top = comparison.images("bluish images", side="b", k=4)
    assert [im.score for im in top.images] == pytest.approx(sorted(scores_b, reverse=True)[:4])
    bottom = comparison.images("bluish images", side="B", k=20, lowest=True)
    assert [im.score for im in bottom.images] == pytest.approx(sorted(scores_b))
    assert all(im.data_uri.startswith("data:image/jpeg;base64,") for im in bottom.images)
    assert top.side == "B" and str(top).startswith("highest-scoring images of B for 'bluish images'")
    assert top.images[0].name in str(top)
    with pytest.raises(InputError, match="side must be"):
        comparison.images("bluish images", side="c")
    with pytest.raises(InputError, match="k must be"):
        comparison.images("bluish images", k=0)


def test_propose_both_ways_reuses_the_sets(image_dirs, counting_scorer):
    a, b = image_dirs
    proposer = FixedProposer(["reddish  images", "Reddish images", "bluish images"])
    comparison = visdiff.Comparison(a, b, scorer=counting_scorer, proposer=proposer)
    assert comparison.propose() == ["reddish images", "bluish images"]
    assert comparison.propose(over="b") == ["reddish images", "bluish images"]
    assert proposer.calls == 2 and "6 images" in repr(comparison)


def test_one_resident_copy_of_the_embeddings_serves_proposer_and_ranking(image_dirs, tiny_clip_weights, monkeypatch):
    """On an accelerator embeddings stay float16, once: the Comparison ranks from the scoring
    stage's own blocks (device memory was 3x the float16 size with a float32 copy beside them).
    Forced here on the CPU through the dtype rule the accelerator path uses."""
    from visdiff.embeddings import scoring as scoring_module

    monkeypatch.setattr(scoring_module, "resident_dtype", lambda device: torch.float16)
    a, b = image_dirs
    hypotheses = ["reddish images", "bluish images"]
    comparison = visdiff.Comparison(a, b, scorer=tiny_clip_weights, device="cpu")
    scoring = comparison.stages.scoring
    [(block_a, set_a), (block_b, _)] = scoring.embed_sets(comparison.set_a, comparison.set_b)
    assert comparison.embeddings("a").dtype == torch.float16
    assert comparison.embeddings("a").data_ptr() == block_a.data_ptr()
    assert comparison.embeddings("b").data_ptr() == block_b.data_ptr()
    # The proposer's scores (scoring.score) and the Comparison's agree: both widen to float32.
    np.testing.assert_array_equal(scoring.score(set_a, hypotheses), np.asarray(comparison.scores(hypotheses)[0]))


@pytest.mark.gpu
def test_on_cuda_embeddings_are_half_and_results_equal_the_cpu(image_dirs, tiny_clip_weights):
    a, b = image_dirs
    hypotheses = ["reddish images", "bluish images", "noisy images"]
    on_gpu = visdiff.Comparison(a, b, scorer=tiny_clip_weights, device="cuda")
    assert on_gpu.embeddings("a").dtype == torch.float16 and on_gpu.device.type == "cuda"
    [(block_a, _), _] = on_gpu.stages.scoring.embed_sets(on_gpu.set_a, on_gpu.set_b)
    assert on_gpu.embeddings("a").data_ptr() == block_a.data_ptr()
    scores = on_gpu.scores(hypotheses)
    assert all(s.device.type == "cuda" for s in scores)
    expected = rank_scores(*(s.cpu().numpy() for s in scores), hypotheses)
    pd.testing.assert_frame_equal(on_gpu.rank(hypotheses), expected, check_frame_type=False,
                                  check_exact=False, rtol=1e-9, atol=1e-9)


def test_cli_rank_and_api_compare_go_through_a_comparison(image_dirs, tiny_clip_weights, monkeypatch):
    calls = []
    for method in ("rank", "compare"):
        original = getattr(visdiff.Comparison, method)
        monkeypatch.setattr(visdiff.Comparison, method,
                            lambda self, *args, _original=original, _name=method, **kw: calls.append(_name)
                            or _original(self, *args, **kw))
    a, b = image_dirs
    result = run_cli("rank", str(a), str(b), "--scorer", tiny_clip_weights, "-H", "red", "--json", "-")
    assert result.exit_code == 0, result.output
    visdiff.compare(a, b, scorer=tiny_clip_weights, proposer=FixedProposer(["red", "blue"]))
    assert calls == ["rank", "compare"]


def test_a_result_keeps_the_proposal_rounds_of_its_own_call(image_dirs, fake_openai):
    """Every result held the run's list of rounds itself: a later .propose() or .compare()
    on the same Comparison grew the rounds of a result already returned."""
    fake_openai.respond = lambda request: Reply("* animals\n* dark, underexposed photos")
    comparison = visdiff.Comparison(*image_dirs, profile="offline", proposer="llm:fake-model",
                                    base_url=fake_openai.base_url, rounds=1, show_progress=False)
    first = comparison.compare()
    rounds = [dict(r) for r in first.proposal_rounds]
    comparison.propose(over="b")
    second = comparison.compare()
    assert len(rounds) == 1 and first.proposal_rounds == rounds
    assert len(second.proposal_rounds) == 1 and second.proposal_rounds[0] is not first.proposal_rounds[0]
