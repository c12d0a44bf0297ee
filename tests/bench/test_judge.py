"""Judges: strict rubric parsing, the LLM judge over a local OpenAI-protocol server, and the
offline MiniLM judge against hand-labelled rubric scores."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.fake_openai import Reply, fake_openai  # noqa: F401
from visdiff.cache_root import CacheRoot
from visdiff.errors import BackendError
from visdiff.llm import RequestPool
from visdiffbench import LLMJudge, OfflineJudge, create_judge, parse_rubric_answer
from visdiffbench.judge import normalize_phrase

CALIBRATION = Path(__file__).resolve().parents[1] / "data" / "judge_calibration.jsonl"


@pytest.mark.parametrize("answer, score", [
    ("2", 1.0), ("1", 0.5), ("0", 0.0), (" 2\n", 1.0), ("1.", 0.5),
    ("", None), ("Score: 2", None), ("2/2", None), ("12", None), ("two", None), ("2 (fully aligned)", None), ("3", None),
])
def test_rubric_answers_are_parsed_strictly(answer, score):
    assert parse_rubric_answer(answer) == score


def test_llm_judge_asks_once_per_hypothesis_and_records_unusable_answers(fake_openai, tmp_path):
    fake_openai.replies += [Reply("2"), Reply("1."), Reply("I would say 2")]
    # One request at a time: the scripted replies meet the hypotheses in order.
    judge = LLMJudge("judge-model", base_url=fake_openai.base_url, cache=CacheRoot(tmp_path), llm_pool=RequestPool(1))
    judgements = judge.judge(["dogs", "puppies", "animals"], name_a="dogs", name_b="birds")
    assert [j.score for j in judgements] == [1.0, 0.5, None]
    assert judgements[2].detail == "I would say 2"
    assert len(fake_openai.requests) == 3
    body = fake_openai.requests[1].body
    assert body["model"] == "judge-model" and body["temperature"] == 0
    prompt = fake_openai.requests[1].last_user_text
    assert "Group A: dogs" in prompt and "Group B: birds" in prompt and "Prediction: puppies" in prompt
    assert judge.describe()["prompt"] == "judge" and len(judge.describe()["prompt_sha256"]) == 64


def test_llm_judge_answers_are_cached(fake_openai, tmp_path):
    fake_openai.replies += [Reply("0")]
    first = LLMJudge("judge-model", base_url=fake_openai.base_url, cache=CacheRoot(tmp_path))
    assert first.judge(["grass"], name_a="dogs", name_b="birds")[0].score == 0.0
    again = LLMJudge("judge-model", base_url=fake_openai.base_url, cache=CacheRoot(tmp_path))
    assert again.judge(["grass"], name_a="dogs", name_b="birds")[0].score == 0.0
    assert len(fake_openai.requests) == 1 and again.client.stats.cached == 1


def test_llm_judge_prompt_comes_from_the_prompt_set_or_a_file(fake_openai, tmp_path):
    fake_openai.respond = lambda request: Reply("2")
    paper = create_judge("llm", llm="judge-model", base_url=fake_openai.base_url, prompts="paper")
    paper.judge(["dogs"], name_a="dogs", name_b="cats")
    assert "agrees with the description of Group A" in fake_openai.requests[-1].last_user_text
    assert paper.describe()["prompt_set"] == "paper"
    template = tmp_path / "judge.txt"
    template.write_text("Is '$hypothesis' about $name_a rather than $name_b? 2, 1 or 0.")
    own = create_judge("llm", llm="judge-model", base_url=fake_openai.base_url, prompt=str(template), prompts="paper")
    assert [j.score for j in own.judge(["dogs"], name_a="dogs", name_b="cats")] == [1.0]
    assert fake_openai.requests[-1].last_user_text == "Is 'dogs' about dogs rather than cats? 2, 1 or 0."
    assert own.describe()["prompt"] == str(template)


def test_create_judge_validates_names():
    with pytest.raises(BackendError, match="needs a model"):
        create_judge("llm")
    with pytest.raises(BackendError, match="unknown judge 'gpt'"):
        create_judge("gpt")


@pytest.mark.parametrize("text, expected", [
    ("Images of dogs", "dogs"), ("presence of  red text", "red text"), ("a photo of a cat", "cat"), ("the", "the"),
    ("in the snow", "in the snow"),
])
def test_normalize_phrase_drops_leading_boilerplate(text, expected):
    assert normalize_phrase(text) == expected


@pytest.fixture(scope="module")
def offline_judge():
    return OfflineJudge()


def test_offline_judge_scores_clear_cases(offline_judge):
    judgements = offline_judge.judge(["images of dogs", "birds", "grass"], name_a="dogs", name_b="birds")
    assert [j.score for j in judgements] == [1.0, 0.0, 0.0]
    assert judgements[0].detail.startswith("sim_a=1.000")
    # Shared words are discounted: only "dogs" distinguishes these names.
    assert offline_judge.judge(["dogs"], name_a="Dogs playing in a park", name_b="Cats playing in a park")[0].score == 1.0
    assert offline_judge.judge([], name_a="a", name_b="b") == []
    # Naming A outright is a full match even when B's name embeds close to it.
    close = offline_judge.judge(["Upside-down photos", "upside-down"], name_a="upside-down photos", name_b="upright photos")
    assert [j.score for j in close] == [1.0, 1.0]


def test_offline_judge_agrees_with_hand_labelled_rubric_scores(offline_judge):
    by_pair: dict[tuple[str, str], list[dict]] = {}
    for line in CALIBRATION.read_text().splitlines():
        row = json.loads(line)
        by_pair.setdefault((row["set1"], row["set2"]), []).append(row)
    predicted, rubric = [], []
    for (name_a, name_b), rows in by_pair.items():
        predicted += [j.score for j in offline_judge.judge([r["hypothesis"] for r in rows], name_a=name_a, name_b=name_b)]
        rubric += [r["rubric"] / 2 for r in rows]
    predicted, rubric = np.array(predicted), np.array(rubric)
    assert len(rubric) == 84
    # Measured: 63/84 exact (0.75), Pearson 0.74; the figures the README quotes.
    assert (predicted == rubric).mean() >= 0.74
    assert np.corrcoef(predicted, rubric)[0, 1] >= 0.7
