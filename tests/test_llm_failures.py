"""LLM failures are never silent (issue #25): a failed refinement round keeps the ranking that
finished before it and fails the run naming the round and the service; an empty refinement
answer is the same failure as in a proposal round; a bench judge that answers no choice fails
the run instead of scoring the pair a miss. Scripted LLM server, offline models."""

from __future__ import annotations

import base64
import json

import pytest
from typer.testing import CliRunner

from tests.bench.test_run import MINIBENCH, PHRASES
from tests.cli_helpers import run_cli
from tests.fake_openai import FAST_RETRY, Reply
from visdiff import compare
from visdiff.cli import app
from visdiff.errors import ServiceError
from visdiff.llm import RequestPool
from visdiff.llm.client import ChatClient
from visdiff.refine import RefinementFailed
from visdiffbench import LLMJudge


# Fixture: fake_openai (a scripted OpenAI-compatible server per test).
pytest_plugins = ["tests.fake_openai"]

# A chat completion without any choice: a 200 answer holding nothing.
NO_CHOICE = json.dumps({"id": "chatcmpl-fake", "object": "chat.completion", "created": 0, "model": "m", "choices": []})
# What the refinement request gets, and what the one-line error then says of the service.
FAILED_ANSWERS = {
    "HTTP 500": (Reply("overloaded", status=500, headers=FAST_RETRY), "HTTP 500"),
    "HTTP 401": (Reply("bad key", status=401), "HTTP 401, key refused"),
    "cut-off JSON": (Reply(raw_body='{"choices": [{"message": '), "malformed response"),
    "empty answer": (Reply(""), "gave no usable list, even when asked again"),
    "null answer": (Reply(None), "gave no usable list, even when asked again"),
    "no choice": (Reply(raw_body=NO_CHOICE), "gave no usable list, even when asked again"),
}


def refinement_gets(reply: Reply):
    """Proposal rounds answer "dogs"; every refinement request (it shows AUROCs) gets ``reply``."""
    return lambda request: reply if "AUROC" in request.last_user_text else Reply("* dogs")


@pytest.mark.parametrize("case", FAILED_ANSWERS)
def test_a_failed_refinement_round_raises_with_the_ranking_before_it(case, dark_and_bright, fake_openai, offline_models):
    reply, reason = FAILED_ANSWERS[case]
    fake_openai.respond = refinement_gets(reply)
    with pytest.raises(RefinementFailed, match=r"^refinement round 1 \(more true of A\) failed: ") as raised:
        compare(*dark_and_bright, llm="fake-model", base_url=fake_openai.base_url, rounds=1, samples_per_set=4,
                refine=2, show_progress=False, **offline_models)
    assert reason in str(raised.value) and ("fake-model" in str(raised.value))
    assert isinstance(raised.value, ServiceError)  # the CLI's exit 1
    result = raised.value.result
    assert list(result.table["hypothesis"]) == ["dogs"] and result.proposals == ["dogs"]
    stopped = result.config["refine_stopped"]
    assert stopped["round"] == 1 and stopped["direction"] == "A" and reason in stopped["reason"]


@pytest.mark.parametrize("case", ["HTTP 500", "empty answer"])
def test_cli_compare_writes_the_ranking_before_a_failed_refinement_round_and_exits_1(
        case, dark_and_bright, fake_openai, tmp_path):
    reply, reason = FAILED_ANSWERS[case]
    fake_openai.respond = refinement_gets(reply)
    out, json_path = tmp_path / "out", tmp_path / "table.json"
    result = run_cli("compare", *dark_and_bright, "--llm", "fake-model", "--base-url", fake_openai.base_url,
                     "--rounds", "1", "--samples", "4", "--refine", "2", "--out", out, "--json", json_path,
                     "--all", "-q")
    assert result.exit_code == 1, result.output
    *written, line = result.stderr.strip().splitlines()  # "wrote ...", then the one error line
    assert [w for w in written if not w.startswith("wrote ")] == [], result.stderr
    assert line.startswith("error: refinement round 1 (more true of A) failed: ") and reason in line
    assert "Traceback" not in result.output
    assert "dogs" in result.stdout  # the terminal table
    saved = json.loads((out / "results.json").read_text())
    assert [row["hypothesis"] for row in saved["results"]] == ["dogs"]
    assert saved["config"]["refine_stopped"]["round"] == 1 and reason in saved["config"]["refine_stopped"]["reason"]
    table = json.loads(json_path.read_text())
    assert table["config"]["refine_stopped"]["round"] == 1
    assert (out / "report.html").is_file() and (out / "results.csv").is_file()


@pytest.mark.parametrize("answer", [Reply(raw_body=NO_CHOICE), Reply(None), Reply("  \n")])
def test_an_llm_judge_that_answers_nothing_is_a_service_failure(answer, fake_openai):
    fake_openai.replies += [Reply("2"), answer]
    judge = LLMJudge("judge-model", base_url=fake_openai.base_url, llm_pool=RequestPool(1))  # replies in order
    with pytest.raises(ServiceError, match=r"judge LLM 'judge-model' at http://127\.0\.0\.1:\d+/v1: empty answer .*'puppies'"):
        judge.judge(["dogs", "puppies"], name_a="dogs", name_b="birds")


def test_bench_with_an_llm_judge_answering_no_choice_exits_1_and_records_no_miss(tmp_path, tiny_clip_weights, fake_openai):
    vocabulary = tmp_path / "words.txt"
    vocabulary.write_text("\n".join(PHRASES) + "\n")
    fake_openai.respond = lambda request: Reply(raw_body=NO_CHOICE)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, [
        "bench", str(MINIBENCH), "--split", "easy", "--limit", "1", "--out", str(out), "--scorer", tiny_clip_weights,
        "--proposer", f"vocabulary:{vocabulary}", "--judge", "llm", "--judge-llm", "judge-model",
        "--judge-base-url", fake_openai.base_url, "--device", "cpu", "--no-merge", "-q"])
    assert result.exit_code == 1, result.output
    assert "judge LLM 'judge-model'" in result.output and "empty answer" in result.output
    assert "Traceback" not in result.output
    results = out / "results.jsonl"
    assert not results.exists() or not results.read_text().strip()  # the pair is not scored as never proposed


def echo_authorization(request) -> Reply:
    """A server that quotes the request's credentials in its error body, as some proxies do."""
    return Reply(f"refused: authorization was {request.headers.get('authorization')}", status=400)


@pytest.mark.parametrize("debug", [[], ["--debug"]], ids=["plain", "debug"])
def test_credentials_a_server_echoes_back_are_masked_in_every_form(debug, image_dirs, fake_openai, tmp_path):
    fake_openai.respond = echo_authorization
    url = fake_openai.base_url.replace("http://", "http://alice:Pa%24%24word@")
    basic = base64.b64encode(b"alice:Pa$$word").decode()
    result = run_cli("compare", *image_dirs, "--llm", "m", "--base-url", url, "--rounds", "1", "--no-cache",
                     "--out", tmp_path / "out", "-q", *debug, env={"OPENAI_API_KEY": "sk-echoed-KEY"})
    assert result.exit_code == 1, result.output
    assert fake_openai.requests[0].headers["authorization"] == f"Basic {basic}"  # the URL's user wins over the key
    assert "refused: authorization was" in result.stderr
    for secret in ["sk-echoed-KEY", basic, basic.rstrip("="), "Pa$$word", "Pa%24%24word"]:
        assert secret not in result.output
    assert ("Traceback" in result.stderr) == bool(debug)


def test_a_basic_header_a_server_echoes_is_masked(fake_openai, tmp_path):
    fake_openai.respond = lambda request: Reply("your header: Basic " + base64.b64encode(b"alice:s3cret-pw").decode(),
                                                status=400)
    url = fake_openai.base_url.replace("http://", "http://alice:s3cret-pw@")
    with pytest.raises(ServiceError) as raised:
        ChatClient("m", base_url=url, max_retries=0).chat([{"role": "user", "content": "hi"}])
    assert "your header: Basic <redacted>" in str(raised.value)
