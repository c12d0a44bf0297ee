"""The pairwise scorers: vqa (tiny random BLIP-2 and LLaVA through the logit path, and an
OpenAI-compatible endpoint over HTTP) and caption-llm (captions + a scripted LLM), through the
scoring stage with its pair-score cache."""

from __future__ import annotations

import json
import logging
import re

import numpy as np
import pytest
import torch
from PIL import Image

import visdiff
from tests.fake_openai import FAST_RETRY, Reply
from visdiff.cache_root import CacheRoot
from visdiff.captioning import Captioning
from visdiff.embeddings.scoring import create_scoring
from visdiff.errors import InputError, ServiceError
from visdiff.llm import RequestPool
from visdiff.sources import load_image_set
from visdiff.scorers import create_scorer, list_scorers
from visdiff.scorers.caption_llm import parse_yes_no_list
from visdiff.scorers.vqa import parse_yes_no

# Fixtures: fake_openai (scripted OpenAI-compatible server), tiny_* model folders.
pytest_plugins = ["tests.captioner_fixtures", "tests.fake_openai"]

TEXTS = ["red", "a dog on grass", "snow"]


@pytest.fixture
def image_sets():
    colours = [(200, 30, 30), (30, 200, 30), (30, 30, 200), (200, 200, 30)]
    images = [Image.new("RGB", (40, 36), c) for c in colours]
    return load_image_set(images[:2], name="A"), load_image_set(images[2:], name="B")


class CountingPairs:
    """Wraps a pairwise scorer, recording how many pairs the model was asked about."""

    def __init__(self, inner):
        self.inner, self.spec, self.asked = inner, inner.spec, []

    @property
    def cache_id(self):
        return self.inner.cache_id

    def prepare(self, items):
        return self.inner.prepare(items)

    def score_pairs(self, pairs):
        self.asked.append(len(pairs))
        return self.inner.score_pairs(pairs)


def test_backends_are_registered():
    assert {"vqa", "caption-llm"} <= set(list_scorers())


@pytest.mark.parametrize("fixture", ["tiny_blip2_opt", "tiny_blip2_t5", "tiny_llava"])
def test_vqa_logit_path_gives_p_yes_batched_over_pairs(fixture, request, image_sets):
    folder = request.getfixturevalue(fixture)
    batched = create_scorer(f"vqa:{folder}", device="cpu", batch_size=8)
    one_by_one = create_scorer(f"vqa:{folder}", device="cpu", batch_size=1)
    items = image_sets[0].items + image_sets[1].items
    pairs = [(item, text) for item in items for text in TEXTS]
    scores = batched.score_pairs(pairs)
    assert scores.shape == (12,) and np.all((scores > 0) & (scores < 1))
    assert len(set(np.round(scores, 6))) > 1  # the random model does tell pairs apart
    np.testing.assert_allclose(scores, one_by_one.score_pairs(pairs), atol=1e-5)  # left padding is right


def test_vqa_p_yes_is_the_yes_share_of_the_next_token(tiny_llava, image_sets):
    scorer = create_scorer(f"vqa:{tiny_llava}", device="cpu")
    item = image_sets[0].items[0]
    [score] = scorer.score_pairs([(item, "red")])
    _, processor, model, yes, no, _ = scorer._load()
    assert sorted(processor.tokenizer.convert_ids_to_tokens(yes)) == ["Yes", "yes"]
    text = processor.apply_chat_template([{"role": "user", "content": [
        {"type": "image"}, {"type": "text", "text": "Does this image contain red?"}]}], add_generation_prompt=True)
    with torch.inference_mode():
        logits = model(**processor(images=[item.open()], text=[text], return_tensors="pt")).logits[0, -1]
    probs = torch.softmax(logits.float(), dim=-1)
    assert score == pytest.approx(float(probs[yes].sum() / (probs[yes].sum() + probs[no].sum())), abs=1e-5)


def test_vqa_scores_go_through_the_stage_cached_per_pair(tiny_blip2_opt, image_sets, tmp_path):
    scorer = CountingPairs(create_scorer(f"vqa:{tiny_blip2_opt}", device="cpu"))
    scoring = create_scoring(scorer, cache=CacheRoot(tmp_path))
    [(block_a, _), (block_b, _)] = scoring.embed_sets(*image_sets)
    first = scoring.score_embeddings([block_a, block_b], TEXTS)
    assert [s.shape for s in first] == [(2, 3), (2, 3)] and scorer.asked == [12]
    # Another run: every pair comes from the cache; a new hypothesis asks only its 4 pairs.
    again = create_scoring(scorer, cache=CacheRoot(tmp_path))
    blocks = [b for b, _ in again.embed_sets(*image_sets)]
    second = again.score_embeddings(blocks, [*TEXTS, "cat"])
    assert scorer.asked == [12, 4] and again.stats.cached == 12 and again.stats.scored == 4
    np.testing.assert_allclose(second[0][:, :3], first[0], atol=1e-6)


def test_an_undecodable_image_is_dropped_before_scoring(tiny_blip2_opt, tmp_path):
    (tmp_path / "a").mkdir()
    for i in range(3):
        Image.new("RGB", (20, 20), (60 * i, 10, 10)).save(tmp_path / "a" / f"{i}.png")
    broken = tmp_path / "a" / "2.png"
    broken.write_bytes(broken.read_bytes()[:60])  # a PNG header, then nothing: fails to decode
    scoring = create_scoring(create_scorer(f"vqa:{tiny_blip2_opt}", device="cpu"), cache=CacheRoot.disabled())
    [(block, kept)] = scoring.embed_sets(load_image_set(tmp_path / "a"))
    assert len(kept) == 2 and len(kept.skipped) == 1 and scoring.stats.failed == 1
    assert scoring.score_embeddings([block], ["red"])[0].shape == (2, 1)


def test_vqa_needs_a_model():
    with pytest.raises(InputError, match="the vqa scorer needs a model"):
        create_scorer("vqa")


@pytest.mark.parametrize("answer, score", [("Yes.", 1.0), (" no, it does not", 0.0), ("Maybe", None), ("", None)])
def test_yes_no_answers_are_parsed(answer, score):
    assert parse_yes_no(answer) == score


def _openai_vqa(server, **options):
    return create_scorer("vqa:openai:vision-model", base_url=server.base_url, max_retries=1, llm_pool=RequestPool(1),
                         **options)


def test_vqa_endpoint_reads_p_yes_from_logprobs(fake_openai, image_sets):
    fake_openai.replies += [Reply("Yes", top_logprobs=[("Yes", np.log(0.6)), (" no", np.log(0.2)), ("maybe", np.log(0.2))])]
    [score] = _openai_vqa(fake_openai).score_pairs([(image_sets[0].items[0], "red cars")])
    assert score == pytest.approx(0.75)
    body = fake_openai.requests[0].body
    assert body["logprobs"] is True and body["temperature"] == 0
    assert fake_openai.requests[0].last_user_text == "Does this image contain red cars?"
    assert body["messages"][0]["content"][1]["image_url"]["url"].startswith("data:image/jpeg;base64,")


def test_vqa_endpoint_without_logprobs_scores_the_parsed_answer(fake_openai, image_sets):
    fake_openai.replies += [Reply("Yes."), Reply("No"), Reply("I think so"), Reply("yes")]
    items = image_sets[0].items
    scores = _openai_vqa(fake_openai).score_pairs([(items[0], "red"), (items[1], "red"), (items[0], "snow")])
    assert scores.tolist() == [1.0, 0.0, 1.0]
    # The unusable answer was asked again with a reminder.
    assert fake_openai.requests[3].last_user_text.endswith("Answer with one word: yes or no.")


def test_vqa_endpoint_malformed_twice_or_failing_is_a_service_error(fake_openai, image_sets):
    item = image_sets[0].items[0]
    fake_openai.replies += [Reply("It depends"), Reply("Hard to say")]
    with pytest.raises(ServiceError, match=r"gave no yes/no answer about .* 'red'.*'Hard to say'"):
        _openai_vqa(fake_openai).score_pairs([(item, "red")])
    fake_openai.replies += [Reply(status=429, headers=FAST_RETRY), Reply("no")]
    assert _openai_vqa(fake_openai).score_pairs([(item, "red")]).tolist() == [0.0]
    fake_openai.respond = lambda request: Reply(status=503, content="overloaded", headers=FAST_RETRY)
    with pytest.raises(ServiceError, match="HTTP 503 after 1 retries: overloaded"):
        _openai_vqa(fake_openai).score_pairs([(item, "red")])


def test_vqa_endpoint_in_reference_mode_reads_yes_in_a_sampled_answer(fake_openai, image_sets, caplog):
    """The reference's way: the endpoint's default decoding, "and " removed from the concept,
    1 when "yes" is in the answer, 0 when "no" is, neither scored 0.5 and counted."""
    fake_openai.replies += [Reply("Yes, it does."), Reply("I do not know"), Reply("Hmm, maybe")]
    items = image_sets[0].items
    with caplog.at_level(logging.WARNING, logger="visdiff"):
        scores = _openai_vqa(fake_openai, reference_mode=True).score_pairs(
            [(items[0], "cats and dogs"), (items[1], "red"), (items[0], "snow")])
    assert scores.tolist() == [1.0, 0.0, 0.5]
    assert "1 of 3 answers said neither yes nor no" in caplog.text
    first = fake_openai.requests[0]
    assert first.last_user_text == "Does this image contain cats dogs?"
    assert not {"temperature", "max_tokens", "logprobs"} & set(first.body)


@pytest.mark.parametrize("fixture", ["tiny_blip2_t5", "tiny_llava"])
def test_vqa_in_reference_mode_samples_answers_from_the_model(fixture, request, image_sets):
    folder = request.getfixturevalue(fixture)
    scorer = create_scorer(f"vqa:{folder}", device="cpu", reference_mode=True)
    items = image_sets[0].items + image_sets[1].items
    scores = scorer.score_pairs([(item, text) for item in items for text in TEXTS])
    # A random model's answers are rarely yes or no: every score is one of the three readings.
    assert scores.shape == (12,) and set(scores.tolist()) <= {0.0, 0.5, 1.0}
    assert json.loads(scorer.cache_id)["answers"] == "sampled"
    assert "answers" not in json.loads(create_scorer(f"vqa:{folder}", device="cpu").cache_id)


class FixedCaptioner:
    """Captions by colour, counting the images it captions."""

    spec = "fixed"
    cache_id = "fixed-v1"

    def __init__(self):
        self.images = 0

    def caption_images(self, images):
        self.images += len(images)
        return ["a red square" if im.getpixel((0, 0))[0] > 150 else "a dark square" for im in images]


def answer_by_caption(request):
    """Numbered yes/no lines: yes to 'red' statements when the caption is red."""
    text = request.last_user_text
    red = "a red square" in text
    statements = re.findall(r"^(\d+)\. (.*)$", text, re.M)
    return Reply("\n".join(f"{n}. {'yes' if red and 'red' in s else 'no'}" for n, s in statements))


@pytest.fixture
def caption_llm(fake_openai, tmp_path):
    captioner = FixedCaptioner()
    captioning = Captioning(captioner, cache=CacheRoot(tmp_path))
    scorer = create_scorer("caption-llm:fixed,judge-model", base_url=fake_openai.base_url, max_retries=1,
                           cache=CacheRoot(tmp_path), captioning_for=lambda spec: captioning)
    return scorer, captioner


def test_caption_llm_asks_about_many_hypotheses_per_caption(caption_llm, fake_openai, image_sets, tmp_path):
    scorer, captioner = caption_llm
    fake_openai.respond = answer_by_caption
    scoring = create_scoring(scorer, cache=CacheRoot(tmp_path))
    blocks = [b for b, _ in scoring.embed_sets(*image_sets)]
    scores_a, scores_b = scoring.score_embeddings(blocks, ["red things", "squares", "red squares"])
    assert scores_a.tolist() == [[1, 0, 1], [0, 0, 0]] and scores_b.tolist() == [[0, 0, 0], [1, 0, 1]]
    # One request per distinct caption, three statements each: images captioned alike are asked about once.
    assert captioner.images == 4 and len(fake_openai.requests) == 2
    # The two requests run concurrently: either may arrive first.
    prompts = [r.last_user_text for r in fake_openai.requests]
    assert sum('"a red square"' in p for p in prompts) == 1
    assert all("1. red things\n2. squares\n3. red squares" in p for p in prompts)
    table = visdiff.rank_scores(scores_a, scores_b, ["red things", "squares", "red squares"])
    assert set(table.columns) >= {"auroc", "auroc_low", "p_greater", "q_value"}  # the same statistics as CLIP scores


def test_caption_llm_splits_long_lists_and_retries_malformed_answers(fake_openai, image_sets, tmp_path):
    captioning = Captioning(FixedCaptioner(), cache=CacheRoot.disabled())
    scorer = create_scorer("caption-llm:fixed,m", base_url=fake_openai.base_url, max_retries=1,
                           captioning_for=lambda spec: captioning, statements_per_call=2, llm_pool=RequestPool(1))
    fake_openai.replies += [Reply("Sure! 1. yes 2. no"), Reply("1. yes\n2. no"), Reply("1. no")]
    item = image_sets[0].items[0]
    assert scorer.score_pairs([(item, "a"), (item, "b"), (item, "c")]).tolist() == [1.0, 0.0, 0.0]
    assert len(fake_openai.requests) == 3
    assert "Reply with exactly 2 lines" in fake_openai.requests[1].last_user_text


def test_caption_llm_in_reference_mode_asks_one_concept_a_request_with_examples(fake_openai, image_sets, caplog):
    captioning = Captioning(FixedCaptioner(), cache=CacheRoot.disabled())
    scorer = create_scorer("caption-llm:fixed,m", base_url=fake_openai.base_url, max_retries=1,
                           captioning_for=lambda spec: captioning, llm_pool=RequestPool(1), reference_mode=True)
    fake_openai.replies += [Reply("OUTPUT: Yes"), Reply("no."), Reply("unsure")]
    item = image_sets[0].items[0]
    with caplog.at_level(logging.WARNING, logger="visdiff"):
        scores = scorer.score_pairs([(item, "red things"), (item, "squares"), (item, "circles")])
    assert scores.tolist() == [1.0, 0.0, 0.5] and "1 of 3 answers said neither yes nor no" in caplog.text
    assert len(fake_openai.requests) == 3  # one (caption, concept) a request
    first = fake_openai.requests[0]
    assert first.body["temperature"] == 0
    assert 'Given the caption "a red square" and the concept "red things"' in first.last_user_text
    assert first.last_user_text.count("OUTPUT: yes") >= 2  # worked examples
    assert json.loads(scorer.cache_id)["one_per_call"] is True


def test_caption_llm_malformed_twice_or_failing_is_a_service_error(caption_llm, fake_openai, image_sets):
    scorer, _ = caption_llm
    item = image_sets[0].items[0]
    scorer.prepare([item])
    fake_openai.replies += [Reply("1. yes\n2. maybe"), Reply("yes, no")]
    with pytest.raises(ServiceError, match=r"did not answer 2 numbered yes/no lines.*'yes, no'"):
        scorer.score_pairs([(item, "a"), (item, "b")])
    fake_openai.respond = lambda request: Reply(status=500, content="down", headers=FAST_RETRY)
    with pytest.raises(ServiceError, match="HTTP 500"):
        scorer.score_pairs([(item, "c")])


@pytest.mark.parametrize("answer, n, expected", [
    ("1. yes\n2) No\n\n3: YES.", 3, [1.0, 0.0, 1.0]),
    ("1. yes\n3. no", 2, None),
    ("2. yes\n1. no", 2, None),
    ("1. yes\n2. no\n3. yes", 2, None),
    ("Here you go:\n1. yes", 1, None),
])
def test_yes_no_lists_are_parsed_strictly(answer, n, expected):
    assert parse_yes_no_list(answer, n) == expected


def test_caption_llm_spec_needs_captioner_and_llm():
    with pytest.raises(InputError, match="caption-llm needs CAPTIONER,LLM"):
        create_scorer("caption-llm:blip2")


def test_rank_with_caption_llm_reuses_the_runs_captioner(tiny_blip2_opt, fake_openai, image_sets, tmp_path):
    fake_openai.respond = lambda request: Reply("\n".join(f"{n}. yes" for n in re.findall(r"^(\d+)\. ", request.last_user_text, re.M)))
    table = visdiff.rank(["red", "snow"], *image_sets, scorer=f"caption-llm:blip2:{tiny_blip2_opt},fake",
                         base_url=fake_openai.base_url, cache_dir=tmp_path, caption_max_tokens=3)
    assert list(table.hypothesis) and table.attrs["scorer"] == f"caption-llm:blip2:{tiny_blip2_opt},fake"
    assert table.attrs["embeddings"] == {"scored": 8, "cached": 0, "failed": 0}
    # One request per distinct caption (the tiny BLIP-2 may caption two images alike), never one twice,
    # though requests run 4 at a time.
    texts = [r.last_user_text for r in fake_openai.requests]
    assert 2 <= len(texts) <= 4 and len(set(texts)) == len(texts)


@pytest.mark.gpu
@pytest.mark.parametrize("fixture", ["tiny_blip2_opt", "tiny_blip2_t5", "tiny_llava"])
def test_gpu_vqa_in_half_precision_matches_full_precision(fixture, request, image_sets):
    folder = request.getfixturevalue(fixture)
    half = create_scorer(f"vqa:{folder}")
    assert half.device.type == "cuda" and half.dtype == torch.float16
    pairs = [(item, text) for item in image_sets[0].items for text in TEXTS]
    scores = half.score_pairs(pairs)
    np.testing.assert_allclose(scores, create_scorer(f"vqa:{folder}", device="cpu").score_pairs(pairs), atol=0.02)
