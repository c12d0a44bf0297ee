"""``--dry-run``: the plan of compare, propose, bench and sweep sends no request, loads no
model, writes nothing, and counts what the run then does."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from tests.cli_helpers import run_cli
from tests.conftest import make_image
from tests.fake_openai import Reply, fake_openai  # noqa: F401
from visdiff.llm.tokens import image_tokens, message_tokens, text_tokens

MINIBENCH = Path(__file__).resolve().parent / "data" / "minibench"
ANSWERS = ["- red tones\n- noisy textures", "- Blue tones\n- red tones"]


@pytest.fixture(autouse=True)
def api_key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")


def caption_or_answer(request) -> Reply:
    """Vision requests (captioning) get a caption, text requests a round's list."""
    content = request.body["messages"][-1]["content"]
    if isinstance(content, list) and any(part["type"] == "image_url" for part in content):
        return Reply("a small square photo")
    return Reply(ANSWERS[request.body.get("seed", 0) % 1000 % len(ANSWERS)])


def chat_args(image_dirs, server, scorer, *extra) -> list:
    a, b = image_dirs
    return ["compare", a, b, "--captioner", "openai:fake-vision", "--llm", "fake-model", "--base-url",
            server.base_url, "--scorer", scorer, "--rounds", "2", "--samples", "3", "--no-merge", *extra]


def plan_of(*args) -> dict:
    result = run_cli(*args, "--dry-run", "--json", "-")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def by_stage(usage: dict) -> dict[str, dict]:
    return {row["stage"]: row for row in usage["by_stage"]}


def cached_files(cache: Path) -> list[Path]:
    return [p for p in cache.rglob("*") if p.is_file()]


def test_a_dry_run_sends_and_writes_nothing_and_counts_the_run(image_dirs, fake_openai, tiny_clip_weights,
                                                               isolated_cache, tmp_path):
    fake_openai.respond = caption_or_answer
    args = chat_args(image_dirs, fake_openai, tiny_clip_weights)
    cold = plan_of(*args)
    assert fake_openai.requests == [] and cached_files(isolated_cache) == []
    assert cold["embeddings"] == {"images": 12, "cached": 0, "new": 12}
    planned = by_stage(cold["llm_usage"])
    assert planned["proposing"]["requests"] == 2 and planned["proposing"]["cached"] == 0
    assert planned["captioning"]["requests"] == cold["captions"]["new"] == cold["captions"]["images"]

    result = run_cli(*args, "--json", tmp_path / "run.json", "-q")
    assert result.exit_code == 0, result.output
    done = by_stage(json.loads((tmp_path / "run.json").read_text())["config"]["llm_usage"])
    vision = [r for r in fake_openai.requests if isinstance(r.body["messages"][-1]["content"], list)]
    assert done["captioning"]["requests"] == len(vision) == planned["captioning"]["requests"]
    assert done["proposing"]["requests"] == planned["proposing"]["requests"]

    warm = plan_of(*args)
    assert warm["embeddings"]["new"] == 0 and warm["captions"]["new"] == 0
    assert by_stage(warm["llm_usage"])["proposing"] | {"cost_usd": None} == {
        "stage": "proposing", "model": "fake-model", "requests": 0, "cached": 2, "prompt_tokens": 0,
        "completion_tokens": 0, "cost_usd": None}
    assert "captioning" not in by_stage(warm["llm_usage"])

    # With every caption cached, a round's messages are the ones the run sent, to the character.
    sent = [r.body["messages"] for r in fake_openai.requests if isinstance(r.body["messages"][-1]["content"], str)]
    for answer in (isolated_cache / "llm").rglob("*.json"):
        answer.unlink()
    exact = by_stage(plan_of(*args)["llm_usage"])["proposing"]
    assert exact["requests"] == 2 and exact["prompt_tokens"] == sum(message_tokens(m) for m in sent)
    assert len(fake_openai.requests) == len(vision) + len(sent)  # no plan sent anything


def test_a_dry_run_of_propose_refine_and_both_directions(image_dirs, fake_openai, tiny_clip_weights):
    args = chat_args(image_dirs, fake_openai, tiny_clip_weights, "--both-directions", "--refine", "2")
    planned = by_stage(plan_of(*args)["llm_usage"])
    assert planned["proposing"]["requests"] == 4 and planned["refining"]["requests"] == 4
    a, b = image_dirs
    proposing = by_stage(plan_of("propose", a, b, "--captioner", "openai:fake-vision", "--llm", "fake-model",
                                 "--base-url", fake_openai.base_url, "--scorer", tiny_clip_weights, "--rounds", "2", "--samples", "3",
                                 "--both-directions")["llm_usage"])["proposing"]
    assert proposing["requests"] == 4 and fake_openai.requests == []


def test_a_dry_run_of_several_sets_samples_what_each_comparison_shows(image_dirs, fake_openai, tiny_clip_weights,
                                                                      tmp_path):
    fake_openai.respond = caption_or_answer
    a, b = image_dirs
    for i in range(9):  # a larger third set: each set's proposer reads a balanced sample of the others
        make_image(tmp_path / "c" / f"{i}.png", (40, 200, 40), noise_seed=300 + i)
    args = chat_args((a, b), fake_openai, tiny_clip_weights)
    args[3:3] = [tmp_path / "c"]
    plan = plan_of(*args)
    assert fake_openai.requests == []
    result = run_cli(*args, "-q", "--json", tmp_path / "run.json")
    assert result.exit_code == 0, result.output
    vision = [r for r in fake_openai.requests if isinstance(r.body["messages"][-1]["content"], list)]
    planned = by_stage(plan["llm_usage"])
    assert planned["captioning"]["requests"] == plan["captions"]["new"] == len(vision)
    # 3 sets x 2 rounds; the run answers some from the cache (every caption reads alike here).
    proposing = by_stage(json.loads((tmp_path / "run.json").read_text())["config"]["llm_usage"])["proposing"]
    assert planned["proposing"]["requests"] == 3 * 2 == proposing["requests"] + proposing["cached"]


def test_a_dry_run_prices_the_tokens_and_prints_a_plan(image_dirs, fake_openai, tiny_clip_weights):
    args = chat_args(image_dirs, fake_openai, tiny_clip_weights, "--price", "fake-model=1000/2000",
                     "--price", "fake-vision=1000/2000")
    plan = plan_of(*args)
    rows = plan["llm_usage"]["by_stage"]
    assert plan["llm_usage"]["total"]["cost_usd"] == pytest.approx(
        sum(r["prompt_tokens"] * 1000e-6 + r["completion_tokens"] * 2000e-6 for r in rows))
    shown = run_cli(*args, "--dry-run")
    assert shown.exit_code == 0 and "dry run" in shown.stdout and "to caption" in shown.stdout
    assert "LLM proposing" in shown.stdout and fake_openai.requests == []


@pytest.mark.parametrize("scorer, requests", [("caption-llm:openai:fake-vision,fake-model", 12),
                                              ("vqa:openai:fake-vision", 120)])
def test_a_scorer_that_asks_an_llm_is_planned_per_image_and_hypothesis(image_dirs, fake_openai, scorer, requests):
    a, b = image_dirs
    plan = plan_of("compare", a, b, "--scorer", scorer, "--llm", "fake-model", "--captioner", "openai:fake-vision",
                   "--base-url", fake_openai.base_url, "--rounds", "1", "--hypotheses", "10")
    # 12 images and at most 10 hypotheses: caption-llm asks 20 statements a request, vqa one.
    assert by_stage(plan["llm_usage"])["ranking"]["requests"] == requests and fake_openai.requests == []


def test_images_in_memory_are_planned_by_their_size(fake_openai, tiny_clip_weights):
    from PIL import Image

    from visdiff.options import RunOptions
    from visdiff.plan import plan_compare
    from visdiff.sources import load_image_set
    from visdiff.stages import RunStages

    sets = [load_image_set([Image.new("RGB", (512, 512), (i, shade, 0)) for i in range(3)], name=name)
            for name, shade in (("A", 0), ("B", 200))]
    stages = RunStages(RunOptions.build(captioner="openai:fake-vision", llm="fake-model", base_url=fake_openai.base_url,
                                        scorer=tiny_clip_weights, rounds=1), proposing=True)
    captioning = by_stage(plan_compare(stages, sets).record(stages.prices, what="compare")["llm_usage"])["captioning"]
    # Six 512 x 512 images: one tile each (255 tokens) plus the caption prompt.
    prompt = message_tokens([{"role": "user", "content": stages.captioning.captioner.prompt}])
    assert captioning["requests"] == 6 and captioning["prompt_tokens"] == 6 * (prompt + image_tokens(512, 512))


def test_the_offline_default_plans_without_loading_a_model(image_dirs, monkeypatch):
    import visdiff.scorers.offline as offline

    monkeypatch.setattr(offline, "load_classifier", lambda device: pytest.fail("a dry run loaded the classifier"))
    plan = plan_of("compare", *image_dirs)
    assert plan["embeddings"]["new"] == 12 and plan["llm_usage"]["by_stage"] == []
    assert any("sends no LLM request" in note for note in plan["notes"])


def test_a_bench_dry_run_counts_pairs_and_judge_requests(tmp_path, tiny_clip_weights, fake_openai):
    out = tmp_path / "out"
    args = ["bench", MINIBENCH, "--split", "easy", "--limit", "2", "--out", out, "--scorer", tiny_clip_weights,
            "--llm", "fake-model", "--captioner", "openai:fake-vision", "--base-url", fake_openai.base_url,
            "--rounds", "1", "--samples", "2", "--hypotheses", "4", "--judge", "llm", "--judge-llm", "judge-model"]
    result = run_cli(*args, "--dry-run")
    assert result.exit_code == 0, result.output
    assert "2 comparison(s)" in result.stdout and "LLM judging" in result.stdout and "judge-model" in result.stdout
    assert fake_openai.requests == [] and not out.exists()


def test_a_bench_dry_run_leaves_a_torn_results_line_for_the_run_to_cut(tmp_path, tiny_clip_weights):
    out = tmp_path / "out"
    out.mkdir()
    torn = b'{"pair_id": "easy-1", "split"'
    (out / "results.jsonl").write_bytes(torn)
    result = run_cli("bench", MINIBENCH, "--split", "easy", "--limit", "1", "--out", out, "--scorer",
                     tiny_clip_weights, "--dry-run")
    assert result.exit_code == 0, result.output
    assert "1 comparison(s)" in result.stdout and (out / "results.jsonl").read_bytes() == torn


def test_a_sweep_dry_run_plans_each_value(tmp_path, tiny_clip_weights):
    rows = []
    for value in ("cat", "dog"):
        for group, color in (("x", (200, 30, 30)), ("y", (30, 30, 200))):
            for i in range(3):
                rows.append({"path": str(make_image(tmp_path / f"{value}{group}{i}.png", color, noise_seed=i)),
                             "label": value, "group_name": group})
    table = tmp_path / "t.csv"
    pd.DataFrame(rows).to_csv(table, index=False)
    out = tmp_path / "sweep"
    result = run_cli("sweep", table, "--by", "label", "--group-a", "x", "--group-b", "y", "--scorer", tiny_clip_weights,
                     "--out", out, "--dry-run")
    assert result.exit_code == 0, result.output
    assert "2 comparison(s), 12 images" in result.stdout and not out.exists()


def test_a_dry_run_by_value_embeds_every_image_and_proposes_from_the_ends(tmp_path, tiny_clip_weights, fake_openai):
    rows = [{"path": str(make_image(tmp_path / f"{i}.png", (20 * i, 40, 40), noise_seed=i)), "score": float(i)}
            for i in range(12)]
    table = tmp_path / "t.csv"
    pd.DataFrame(rows).to_csv(table, index=False)
    plan = plan_of("compare", table, "--score-col", "score", "--scorer", tiny_clip_weights, "--llm", "fake-model",
                   "--captioner", "openai:fake-vision", "--base-url", fake_openai.base_url, "--rounds", "1")
    # All 12 embedded; the proposer reads the top and bottom quarter: 3 + 3 captions.
    assert plan["embeddings"]["images"] == 12 and plan["captions"]["images"] == 6
    assert by_stage(plan["llm_usage"])["proposing"]["requests"] == 1 and fake_openai.requests == []
    refused = run_cli("compare", table, "--score-col", "score", "--scorer", tiny_clip_weights, "--holdout", "0.5",
                      "--dry-run")  # as the run refuses it
    assert refused.exit_code == 2 and "holdout compares two sets" in refused.stderr


def test_token_estimates():
    assert text_tokens("a" * 9) == 3
    assert image_tokens(2048, 4096) == 85 + 170 * 6  # fitted to 1024 x 2048, then 768 x 1536: 2 x 3 tiles
    assert message_tokens([{"role": "user", "content": "abcd"}]) == 4 + 1
