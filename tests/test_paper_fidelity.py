"""docs/paper-fidelity.md against the code: every backticked value of its ``--profile paper``
column is what the paper profile does, and a paper run sends the reference's kind of requests
(checked in the loopback server's log) and keeps every proposal unmerged."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

import visdiff
from visdiff import compare
from visdiff.options import RunOptions
from visdiff.profiles import PAPER
from visdiff.prompts import load_prompt
from visdiffbench import LLMJudge

from tests.cli_helpers import run_cli
from tests.fake_openai import Reply

pytest_plugins = ["tests.fake_openai"]

PAGE = Path(__file__).parents[1] / "docs" / "paper-fidelity.md"
# The rows the page must have (issue #26), by their first cell.
REQUIRED_ROWS = ["captioner", "caption decoding", "LLaVA (captioner, VLM)", "proposer model", "prompt semantics",
                 "rounds", "samples", "hypotheses per round", "temperature", "max tokens", "system message",
                 "unusable answer", "ranker", "statistics", "merging", "filtering", "judge", "judge requests",
                 "numerics", "sampling RNG", "VLM proposer", "VQA ranker", "LLM ranker", "paired sets",
                 "feature proposer (ablation)", "correct_delta", "purity"]


def table_rows() -> dict[str, list[str]]:
    lines = [line for line in PAGE.read_text().splitlines() if line.startswith("| ")]
    header, rows = lines[0], lines[1:]
    assert [c.strip() for c in header.strip("|").split("|")][:3] == ["Setting", "Paper / reference", "`--profile paper`"]
    return {cells[0]: cells[1:] for cells in ([c.strip() for c in row.strip("|").split("|")] for row in rows)}


def paper_values() -> dict[str, set[str]]:
    """Each row's backticked values of the paper profile, as the code has them."""
    options = RunOptions(profile="paper")
    settings = lambda mapping: {f"{k}={v}" for k, v in mapping.items()}
    return {
        "captioner": {PAPER.captioner},
        "caption decoding": settings(PAPER.caption_decoding["blip2"]),
        "LLaVA (captioner, VLM)": {PAPER.backend_models["llava"]} | settings(PAPER.caption_decoding["llava"]),
        "proposer model": {PAPER.proposer},
        "rounds": {f"rounds={options.rounds}"},
        "samples": {f"samples_per_set={options.samples_per_set}"},
        "hypotheses per round": {f"hypotheses={options.hypotheses}"},
        "temperature": {f"temperature={PAPER.temperature}"},
        "max tokens": {f"max_tokens={PAPER.max_tokens}"},
        "system message": {load_prompt("system", PAPER.prompts).text.strip()},
        "ranker": {PAPER.scorer},
        "merging": {f"merge={options.merges}"},
        "judge": {PAPER.judge},
        "judge requests": {f"judge_params={dict(PAPER.judge_params)}"},
        "sampling RNG": {f"seed={options.seed}"},
        "numerics": {f"precision={options.scorer_precision}", f"full_decode={options.decodes_full}"},
        "VQA ranker": {f"ranker_mode={PAPER.ranker_mode}"},
        "LLM ranker": {f"ranker_mode={PAPER.ranker_mode}"},
    }


def test_the_page_has_every_setting_and_a_reason_for_each_difference():
    rows = table_rows()
    assert [name for name in REQUIRED_ROWS if name not in rows] == []
    for name, (paper, profile, default, difference) in rows.items():
        assert paper and profile and default and difference, name


@pytest.mark.parametrize("row", sorted(paper_values()))
def test_the_paper_column_is_what_the_paper_profile_does(row):
    cell = table_rows()[row][1]
    assert set(re.findall(r"`([^`]+)`", cell)) == paper_values()[row]


def test_the_paper_prompt_keeps_the_references_rules_and_layout():
    text = load_prompt("propose", "paper").text
    assert "$captions\n" in text  # one block of lines, each starting with its group's name
    for rule in ('"more of ..."', '"presence of ..."', '"images with ..."', "parentheses"):
        assert rule in text
    assert "may hold for some images of Group B" not in text


def test_a_paper_run_sends_reference_style_requests_and_merges_nothing(image_dirs, fake_openai, offline_models):
    fake_openai.respond = lambda request: Reply("* reddish images\n* red images\n* noisy images")
    result = compare(*image_dirs, profile="paper", llm="fake-model", base_url=fake_openai.base_url,
                     samples_per_set=3, show_progress=False, **offline_models)
    assert result.config["options"]["merge"] is False
    assert len(result.table) == 3  # "reddish images" and "red images" stay two rows
    for request in fake_openai.requests:
        system, user = request.body["messages"]
        assert system == {"role": "system", "content": "You are a helpful assistant."}
        assert not {"temperature", "max_tokens", "seed"} & set(request.body)  # the provider's defaults
        lines = user["content"].splitlines()
        assert sum(line.startswith("Group A: ") for line in lines) == 3
        assert sum(line.startswith("Group B: ") for line in lines) == 3
    assert len(fake_openai.requests) == 3  # 3 rounds


def test_the_paper_judge_sends_the_plain_system_message_and_no_settings(fake_openai):
    fake_openai.replies.append(Reply("2"))
    judge = LLMJudge("gpt-4", base_url=fake_openai.base_url, prompts="paper", params=PAPER.judge_params)
    [judgement] = judge.judge(["dogs in winter"], name_a="dogs in the snow", name_b="dogs next to cats")
    assert judgement.score == 1.0
    [request] = fake_openai.requests
    assert request.body["messages"][0] == {"role": "system", "content": "You are a helpful assistant."}
    assert not {"temperature", "max_tokens"} & set(request.body)
    assert "superset or a subset" in request.last_user_text


@pytest.mark.parametrize("profile, judge, model", [("paper", "llm", "gpt-4"), ("offline", "offline", None)])
def test_bench_judges_as_the_profile_says_unless_told_otherwise(profile, judge, model):
    from visdiff.cli.bench import JudgeName, _judge_of_profile

    options = RunOptions(profile=profile)
    assert _judge_of_profile(None, None, options) == (JudgeName(judge), model)
    assert _judge_of_profile(JudgeName.offline, None, options) == (JudgeName.offline, None)
    assert _judge_of_profile(JudgeName.llm, "my-judge", options) == (JudgeName.llm, "my-judge")


def test_bench_help_says_the_judge_follows_the_profile():
    words = " ".join(run_cli("bench", "--help").output.replace("│", " ").split())  # the text, unwrapped
    assert "--judge <offline|llm> offline: MiniLM similarity" in words
    assert "Default: the profile's (offline; --profile paper: llm with gpt-4" in words


def test_purity_trades_images_between_the_sets_before_comparing(dark_and_bright, offline_models):
    rank = lambda purity: visdiff.rank(["a dark photo"], *dark_and_bright, purity=purity, show_progress=False,
                                       **offline_models)
    pure, swapped, half = rank(1.0), rank(0.0), rank(0.5)
    assert pure["auroc"][0] == 1.0 and swapped["auroc"][0] == 0.0  # every image of A traded for one of B
    assert 0.0 < half["auroc"][0] < 1.0
    assert half.attrs["n_a"] == half.attrs["n_b"] == 6


def test_purity_outside_0_1_is_a_usage_error(image_dirs):
    result = run_cli("compare", *image_dirs, "--purity", "1.5")
    assert result.exit_code == 2 and "--purity" in result.stderr and "1.5" in result.stderr


def test_the_paper_profile_scores_in_fp32_from_fully_decoded_jpegs(tiny_clip_weights, tmp_path):
    from visdiff.embeddings.mapper import ImageMapper
    from visdiff.stages import RunStages

    paper = RunOptions(profile="paper", scorer=tiny_clip_weights, device="cpu", cache_dir=tmp_path)
    assert (paper.scorer_precision, paper.decodes_full) == ("fp32", True)
    assert (RunOptions().scorer_precision, RunOptions().decodes_full) == ("auto", False)
    assert paper.identity()["precision"] == "fp32" and paper.identity()["full_decode"] is True
    scoring = RunStages(paper).scoring
    assert scoring.scorer.dtype == torch.float32 and scoring.scorer.cache_id.endswith("-fp32")
    # Fully decoded embeddings differ by a few pixels: cached apart from the drafted ones.
    assert scoring.store.cache_id.endswith("-fp32-full-decode")
    assert ImageMapper(scoring.scorer, full_decode=True).split.draft_size is None
    assert ImageMapper(scoring.scorer).split.draft_size is not None
    drafted = RunStages(paper.replace(precision="auto", full_decode=False)).scoring
    assert not drafted.store.cache_id.endswith(("-fp32", "-full-decode"))


@pytest.mark.parametrize("profile, answers", [("paper", "sampled"), ("offline", "p_yes")])
def test_the_vqa_ranker_asks_as_the_profile_says(profile, answers, fake_openai):
    from visdiff.stages import RunStages

    options = RunOptions(profile=profile, scorer="vqa:openai:vision-model", base_url=fake_openai.base_url)
    assert RunStages(options).scoring.scorer.answers == answers
    assert RunStages(options.replace(ranker_mode="visdiff")).scoring.scorer.answers == "p_yes"
