"""The README's reproduction command, end to end on the committed minibench: ``visdiff bench
BENCH --profile paper --judge llm --judge-llm MODEL``, with the paper profile's prompts,
LLM settings and caption decoding, but tiny random models (BLIP-2 with a T5 language model,
a ViT CLIP) and the loopback OpenAI-protocol server in place of the real ones."""

from __future__ import annotations

import json
import re
from pathlib import Path

from typer.testing import CliRunner

from tests.fake_openai import Reply
from visdiff.cli import app
from visdiff.prompts import load_prompt

MINIBENCH = Path(__file__).resolve().parents[1] / "data" / "minibench"

# Fixtures: fake_openai (scripted OpenAI-compatible server), tiny_* model folders.
pytest_plugins = ["tests.captioner_fixtures", "tests.fake_openai"]


def answer(request) -> Reply:
    """The judge gives 2 to a phrase naming set A's colour; the proposer lists colours."""
    text = request.last_user_text
    if "Prediction:" in text:  # one line, as the reference's: "Group A: ... and Group B: .... Prediction: ..."
        group_a, prediction = re.search(r"^Group A: (.*) and Group B: .*\. Prediction: (.*)$", text, re.M).groups()
        return Reply("2" if prediction.split()[0] in group_a else "0")
    return Reply("* red squares\n* blue squares\n* a square next to a circle\n* noisy green images")


def test_the_paper_reproduction_command_runs_end_to_end(tmp_path, tiny_blip2_t5, tiny_clip_weights, fake_openai, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key")
    fake_openai.respond = answer
    out = tmp_path / "paper"
    # The README's command, with the model flags pointing at tiny local models and the loopback server
    # (and shorter captions: beam search over 30 tokens is most of the time; the paper's 30 is
    # checked in tests/test_captioners.py).
    args = ["bench", str(MINIBENCH), "--profile", "paper", "--judge", "llm", "--judge-llm", "judge-model",
            "--out", str(out), "--captioner", f"blip2:{tiny_blip2_t5}", "--scorer", tiny_clip_weights,
            "--llm", "proposer-model", "--base-url", fake_openai.base_url, "--samples", "3", "--caption-max-tokens", "6",
            "--device", "cpu",
            "--cache-dir", str(tmp_path / "cache"), "-q"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert [r["pair_id"] for r in records] == ["easy-1", "easy-2", "hard-1"] and all(r["status"] == "ok" for r in records)

    # The paper's settings reached every stage, and are recorded.
    models = records[0]["models"]
    assert models["profile"] == "paper" and models["options"]["prompts"] is None  # the profile's: paper
    proposer = models["proposer"]
    assert proposer["prompt_set"] == "paper" and proposer["prompt_sha256"] == load_prompt("propose", "paper").sha256
    assert (proposer["temperature"], proposer["max_tokens"], proposer["send_seed"], proposer["rounds"]) == (None, None, False, 3)
    decoding = json.loads(models["captioner_cache_id"])
    assert (decoding["num_beams"], decoding["max_new_tokens"]) == (5, 6)  # the paper's beams, the flag's length
    for record in records:  # one call per round, 3 rounds per pair (identical prompts answered from the cache)
        assert sum(record["models"]["proposer"]["llm_requests"].values()) == 3
    proposals = [r for r in fake_openai.requests if "Prediction:" not in r.last_user_text]
    assert proposals
    for request in proposals:
        body = request.body
        assert body["model"] == "proposer-model" and not {"temperature", "max_tokens", "seed"} & set(body)
        assert body["messages"][0] == {"role": "system", "content": load_prompt("system", "paper").text.strip()}
        assert "more likely to be true of the Group A images" in request.last_user_text
    judged = [r for r in fake_openai.requests if "Prediction:" in r.last_user_text]
    assert all("agrees with the description of Group A" in r.last_user_text for r in judged)
    for request in judged:  # the reference's judge requests: its plain system message, the provider's defaults
        assert request.body["messages"][0]["role"] == "system" and not {"temperature", "max_tokens"} & set(request.body)
    assert models["options"]["merge"] is False  # every proposal kept, as the reference

    # Accuracy and the diagnosis of every pair, per split.
    first = records[0]
    assert first["name_a"] == "red squares" and first["diagnosis"]["matching_ranks"]
    assert set(first["diagnosis"]) >= {"gt_auroc", "gt_rank", "category"}
    summary = (out / "summary.md").read_text()
    assert "| easy | 2 | 2 | 0 |" in summary and "## Misses (no full match in the top 5)" in summary
    assert "misses: no full match in the top 5" in result.output
