"""The run's LLM request pool (visdiff/llm/pool.py) and token accounting (usage.py, prices.py):
answers and cache as sequential calls give them, one bound across clients, one 429 pause for
every worker, tokens summed per stage with cached answers apart, prices. Loopback servers."""

from __future__ import annotations

import json
import threading

import pytest

from tests.bench.test_run import MINIBENCH, PHRASES
from tests.cli_helpers import run_cli
from tests.fake_openai import Reply
from tests.test_sweep import failures_table, spec  # noqa: F401 - failures_table: a fixture
from visdiff import compare
from visdiff.cache_root import CacheRoot
from visdiff.errors import ServiceError
from visdiff.llm import ChatClient, RequestPool
from visdiff.llm.pool import retry_after_seconds
from visdiff.llm.prices import BUILT_IN_PRICES, Price, PriceTable, parse_price
from visdiff.llm.usage import summed_rows, usage_record
from visdiff.options import RunOptions
from visdiff.sweep import run_sweep
from visdiffbench import LLMJudge

pytest_plugins = ["tests.fake_openai"]


def echo_late_first(server):
    """Answers each question with its own text; the first request to arrive is answered last."""
    def respond(request):
        first = len(server.requests) == 1
        return Reply(f"answer to {request.last_user_text}", delay=0.3 if first else 0.0,
                     prompt_tokens=10, completion_tokens=3)
    return respond


def questions(n: int) -> list[list[dict]]:
    return [[{"role": "user", "content": f"question {i}"}] for i in range(n)]


def cache_files(root) -> dict[str, str]:
    return {path.name: path.read_text() for path in sorted((root / "llm").rglob("*.json"))}


def test_chat_many_gives_answers_and_cache_in_input_order_as_sequential_calls(fake_openai, tmp_path):
    fake_openai.respond = echo_late_first(fake_openai)
    answers, caches = {}, {}
    for concurrency in (1, 4):
        root = tmp_path / f"cache{concurrency}"
        client = ChatClient("m", base_url=fake_openai.base_url, cache=CacheRoot(root), pool=RequestPool(concurrency))
        answers[concurrency] = client.chat_many(questions(6), temperature=0)
        caches[concurrency] = cache_files(root)
    assert answers[4] == answers[1] == [f"answer to question {i}" for i in range(6)]
    assert caches[4] == caches[1] and len(caches[1]) == 6


def test_the_first_failure_in_input_order_is_raised_and_no_later_request_is_started(fake_openai):
    fake_openai.respond = lambda request: (Reply("no", status=400) if request.last_user_text == "question 0"
                                           else Reply("fine"))
    client = ChatClient("m", base_url=fake_openai.base_url, pool=RequestPool(1), max_retries=0)
    with pytest.raises(ServiceError, match="HTTP 400"):
        client.chat_many(questions(3))
    assert len(fake_openai.requests) == 1  # sequential: stops at the failure


def test_one_bound_is_shared_by_every_client_of_the_pool(fake_openai):
    # The first two requests wait for each other: proof that two are in flight at once.
    both_arrived = threading.Barrier(2, timeout=10)

    def respond(request):
        if len(fake_openai.requests) <= 2:
            both_arrived.wait()
        return Reply("ok", delay=0.05)

    fake_openai.respond = respond
    pool = RequestPool(2)
    clients = [ChatClient(name, base_url=fake_openai.base_url, pool=pool) for name in ("judge", "proposer")]
    threads = [threading.Thread(target=client.chat_many, args=(questions(4),)) for client in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(fake_openai.requests) == 8 and fake_openai.max_in_flight == 2


def test_a_429_pauses_every_worker_of_the_pool_until_retry_after(fake_openai):
    pause = 0.3
    fake_openai.replies.append(Reply("slow down", status=429, headers={"retry-after-ms": str(int(pause * 1000))}))
    fake_openai.respond = lambda request: Reply(f"answer to {request.last_user_text}", delay=0.05)
    client = ChatClient("m", base_url=fake_openai.base_url, pool=RequestPool(2), max_retries=2)
    answers = client.chat_many(questions(6))
    assert answers == [f"answer to question {i}" for i in range(6)]
    limited, *later = fake_openai.requests
    # Besides the request in flight beside the limited one, every request (the limited one's
    # retry included) was sent after the pause: the workers backed off together.
    assert len(later) == 6
    waited = [r.received_at - limited.received_at >= pause for r in later]
    assert sum(waited) >= 5, [round(r.received_at - limited.received_at, 3) for r in later]


@pytest.mark.parametrize("headers, seconds", [({"retry-after-ms": "1500"}, 1.5), ({"retry-after": "2"}, 2.0),
                                              ({"retry-after": "soon"}, 1.0), ({}, 1.0), ({"retry-after": "600"}, 60.0)])
def test_retry_after_headers_give_the_shared_pause(headers, seconds):
    assert retry_after_seconds(headers) == seconds


def test_usage_is_summed_per_stage_and_model_with_cached_answers_apart(fake_openai, tmp_path):
    fake_openai.respond = lambda request: Reply("2", prompt_tokens=100, completion_tokens=1)
    pool = RequestPool(4)
    judge = LLMJudge("gpt-4o", base_url=fake_openai.base_url, cache=CacheRoot(tmp_path), llm_pool=pool)
    judge.judge(["dogs", "cats", "birds"], name_a="dogs", name_b="cats")
    judge.judge(["dogs", "fish"], name_a="dogs", name_b="cats")  # "dogs" answered from the cache
    other = ChatClient("local-model", base_url=fake_openai.base_url, pool=pool, stage="proposing")
    other.chat(questions(1)[0])
    assert pool.usage.rows() == [
        {"stage": "proposing", "model": "local-model", "requests": 1, "cached": 0, "prompt_tokens": 100,
         "completion_tokens": 1},
        {"stage": "judging", "model": "gpt-4o", "requests": 4, "cached": 1, "prompt_tokens": 400,
         "completion_tokens": 4},
    ]
    record = usage_record(pool.usage.rows(), PriceTable())
    judging = record["by_stage"][1]
    assert judging["cost_usd"] == pytest.approx((400 * 2.5 + 4 * 10.0) / 1e6)  # built-in gpt-4o list price
    assert record["by_stage"][0]["cost_usd"] is None and record["total"]["unpriced_models"] == ["local-model"]
    assert record["total"]["requests"] == 5 and record["total"]["cached"] == 1
    assert record["total"]["cost_usd"] == pytest.approx(judging["cost_usd"])
    given = usage_record(pool.usage.rows(), PriceTable.parse(["local-model=1/2", "gpt-4o=0/0"]))
    assert given["total"]["cost_usd"] == pytest.approx((100 * 1 + 1 * 2) / 1e6) and not given["total"]["unpriced_models"]
    assert given["prices"]["given"] == {"gpt-4o": [0.0, 0.0], "local-model": [1.0, 2.0]}


def test_units_sum_per_stage_and_model():
    row = {"stage": "judging", "model": "m", "requests": 2, "cached": 1, "prompt_tokens": 5, "completion_tokens": 1}
    assert summed_rows([row, {**row, "stage": "proposing"}, row]) == [
        {**row, "stage": "proposing"}, {**row, "requests": 4, "cached": 2, "prompt_tokens": 10, "completion_tokens": 2}]


@pytest.mark.parametrize("text", ["gpt-4o", "gpt-4o=2.5", "gpt-4o=a/b", "=1/2", "gpt-4o=-1/2"])
def test_a_malformed_price_is_refused_naming_it(text):
    with pytest.raises(ValueError, match="MODEL=IN/OUT"):
        parse_price(text)


def test_prices_given_replace_the_built_in_ones():
    table = PriceTable.parse(["gpt-4o=1/4"])
    assert table.price("gpt-4o") == Price(1.0, 4.0) and table.price("gpt-4o-mini") == BUILT_IN_PRICES["gpt-4o-mini"]
    assert table.price("unknown") is None


def test_cli_refuses_a_malformed_price_before_any_work(image_dirs):
    result = run_cli("compare", *image_dirs, "--llm", "m", "--base-url", "http://127.0.0.1:9/v1", "--price", "m=1",
                     env={"OPENAI_API_KEY": "x"})
    assert result.exit_code == 2, result.output
    assert "--price" in result.stderr and "'m=1'" in result.stderr


def echo_round_seed(request) -> Reply:
    """A proposal round's answer names its seed; round 0 is answered last."""
    seed = request.body.get("seed", 0)
    return Reply(f"* phrase {seed}\n* shared phrase", delay=0.3 if seed % 1000 == 0 else 0.0,
                 prompt_tokens=50, completion_tokens=7)


def test_concurrent_proposal_rounds_record_and_rank_as_sequential_ones(dark_and_bright, fake_openai, offline_models,
                                                                       tmp_path):
    fake_openai.respond = echo_round_seed
    results = {concurrency: compare(*dark_and_bright, llm="m", base_url=fake_openai.base_url, rounds=3,
                                    samples_per_set=4, llm_seed=True, llm_concurrency=concurrency,
                                    cache_dir=tmp_path / f"cache{concurrency}", show_progress=False, **offline_models)
               for concurrency in (1, 8)}
    sequential, concurrent = results[1], results[8]
    assert concurrent.proposals == sequential.proposals == ["phrase 0", "shared phrase", "phrase 1", "phrase 2"]
    assert concurrent.proposal_rounds == sequential.proposal_rounds and len(sequential.proposal_rounds) == 3
    assert list(concurrent.table["hypothesis"]) == list(sequential.table["hypothesis"])
    assert cache_files(tmp_path / "cache8") == cache_files(tmp_path / "cache1")
    usage = concurrent.config["llm_usage"]
    assert usage["by_stage"] == [{"stage": "proposing", "model": "m", "requests": 3, "cached": 0, "prompt_tokens": 150,
                                  "completion_tokens": 21, "cost_usd": None}]


def test_cli_records_usage_in_results_report_and_last_line(dark_and_bright, fake_openai, tmp_path):
    fake_openai.respond = lambda request: Reply("* dark photos", prompt_tokens=40, completion_tokens=5)
    out = tmp_path / "out"
    args = ("compare", *dark_and_bright, "--llm", "gpt-4o", "--base-url", fake_openai.base_url, "--rounds", "2",
            "--samples", "4", "--llm-concurrency", "2", "--price", "gpt-4o=1/10", "--cache-dir", tmp_path / "cache",
            "--out", out)
    result = run_cli(*args)
    assert result.exit_code == 0, result.output
    line = "LLM: 2 requests (+0 cached, free), 80 tokens in, 10 out; estimated cost $0.0002 (list prices of 2025-05 and --price)"
    assert result.stderr.strip().splitlines()[-1] == line
    saved = json.loads((out / "results.json").read_text())
    assert saved["config"]["llm_usage"]["total"]["prompt_tokens"] == 80
    assert saved["settings"]["usage"]["llm_usage.total.requests"] == 2
    assert "LLM proposing (gpt-4o)" in (out / "report.html").read_text()
    again = run_cli(*args)  # every answer from the cache: counted apart, free
    assert again.stderr.strip().splitlines()[-1].startswith("LLM: 0 requests (+2 cached, free), 0 tokens in")


def test_bench_records_each_pairs_usage_judging_included(tmp_path, tiny_clip_weights, fake_openai):
    vocabulary = tmp_path / "words.txt"
    vocabulary.write_text("\n".join(PHRASES) + "\n")
    fake_openai.respond = lambda request: Reply("2", prompt_tokens=120, completion_tokens=1)
    out = tmp_path / "out"
    result = run_cli("bench", MINIBENCH, "--split", "easy", "--limit", "1", "--out", out, "--scorer", tiny_clip_weights,
                     "--proposer", f"vocabulary:{vocabulary}", "--judge", "llm", "--judge-llm", "judge-model",
                     "--judge-base-url", fake_openai.base_url, "--device", "cpu", "--no-merge", "--no-cache",
                     "--llm-concurrency", "3", env={"OPENAI_API_KEY": "x"})
    assert result.exit_code == 0, result.output
    [record] = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    judged = len(record["hypotheses"])  # every proposal is judged
    assert judged == len(fake_openai.requests) and fake_openai.max_in_flight <= 3
    assert record["llm_usage"]["by_stage"] == [{"stage": "judging", "model": "judge-model", "requests": judged,
                                                "cached": 0, "prompt_tokens": 120 * judged,
                                                "completion_tokens": judged, "cost_usd": None}]
    assert record["models"]["llm_usage"]["by_stage"] == []  # the comparison alone made no LLM call
    line = f"LLM: {judged} requests (+0 cached, free), {120 * judged:,} tokens in, {judged} out; no price for judge-model"
    assert result.stderr.strip().splitlines()[-1].startswith(line)
    assert line in (out / "summary.md").read_text()


def test_sweep_records_each_values_usage_and_the_total(failures_table, tmp_path, fake_openai):
    fake_openai.respond = lambda request: Reply("* dark photos", prompt_tokens=30, completion_tokens=4)
    run = run_sweep(spec(failures_table), tmp_path / "out", RunOptions(llm="m", base_url=fake_openai.base_url,
                                                              show_progress=False), reports=False)
    lines = {line["value"]: line for line in map(json.loads, (tmp_path / "out" / "results.jsonl").read_text().splitlines())}
    # 3 images a side, no more than --samples: one round each. Dog's images caption as cat's do,
    # so its one request is cat's, answered from the cache: counted apart, no tokens.
    assert lines["cat"]["llm_usage"]["by_stage"] == [{"stage": "proposing", "model": "m", "requests": 1, "cached": 0,
                                                      "prompt_tokens": 30, "completion_tokens": 4, "cost_usd": None}]
    assert lines["dog"]["llm_usage"]["by_stage"] == [{"stage": "proposing", "model": "m", "requests": 0, "cached": 1,
                                                      "prompt_tokens": 0, "completion_tokens": 0, "cost_usd": None}]
    assert "llm_usage" not in lines["rare"]  # skipped: too few images
    total = run.llm_usage["total"]
    assert (total["requests"], total["cached"], total["prompt_tokens"]) == (1, 1, 30) and len(fake_openai.requests) == 1


def test_calls_count_into_the_usage_their_context_selected_whichever_thread_sends_them(fake_openai):
    from concurrent.futures import CancelledError

    from visdiff.llm.usage import TokenUsage

    fake_openai.respond = lambda request: Reply("ok", prompt_tokens=10, completion_tokens=2)
    pool = RequestPool(4)
    client = ChatClient("m", base_url=fake_openai.base_url, pool=pool, stage="judging")
    units = {name: TokenUsage() for name in ("first", "second")}
    both_counting = threading.Barrier(2, timeout=10)

    def unit(name: str, n: int) -> None:
        with pool.counting_into(units[name]):
            both_counting.wait()  # both units count at once, from two threads
            client.chat_many(questions(n))  # map's worker threads count into the caller's usage
            client.chat(questions(1)[0])  # and so does the calling thread

    threads = [threading.Thread(target=unit, args=(name, n)) for name, n in (("first", 3), ("second", 5))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [row["requests"] for row in units["first"].rows()] == [4]
    assert [row["requests"] for row in units["second"].rows()] == [6]
    assert units["second"].rows()[0]["prompt_tokens"] == 60
    assert pool.usage.rows() == []  # outside any unit: the pool's own count, untouched
    client.chat(questions(1)[0])
    assert [row["requests"] for row in pool.usage.rows()] == [1]
    other = RequestPool(2)  # a unit selects where one pool counts, not another pool's
    with pool.counting_into(TokenUsage()):
        assert other.usage is not pool.usage
    # Abandoned work (Ctrl-C): map starts none of its calls not yet started.
    cancel = threading.Event()
    cancel.set()
    with pool.counting_into(TokenUsage(), cancel=cancel), pytest.raises(CancelledError):
        client.chat_many(questions(3))
    assert len(fake_openai.requests) == 3 + 5 + 2 + 1
