"""Wall time of the LLM judge over benchmark pairs, one request at a time vs the default
``--llm-concurrency``, against a loopback OpenAI-compatible server that answers each request
after a fixed latency (as a remote model would).

    .venv/bin/python benchmarks/bench_llm_concurrency.py [--pairs 16] [--hypotheses 30]
        [--latency 0.3] [--concurrency 8]

Each pair's hypotheses are judged as ``visdiff bench`` judges them (:meth:`LLMJudge.judge`, all of
a pair's proposals, pair after pair), first with a pool of 1 (sequential), then with a pool of
``--concurrency``; no answer cache, so both runs send every request. The server answers a rubric
digit derived from the hypothesis, so the two runs' judgements must be identical (checked). Prints
both wall times, their ratio, the requests the server saw at most at once, and the usage line.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fake_openai import FakeOpenAIServer, Reply  # noqa: E402
from visdiff.llm import RequestPool  # noqa: E402
from visdiff.llm.prices import PriceTable  # noqa: E402
from visdiff.llm.usage import usage_line, usage_record  # noqa: E402
from visdiffbench import LLMJudge  # noqa: E402


def rubric_answer(request) -> Reply:
    """A digit that depends only on the question: the same answer whatever the order."""
    digit = hashlib.sha256(request.last_user_text.encode()).digest()[0] % 3
    return Reply(str(digit), prompt_tokens=150, completion_tokens=1)


def judge_pairs(base_url: str, concurrency: int, pairs: int, hypotheses: int) -> tuple[float, list, RequestPool]:
    pool = RequestPool(concurrency)
    judge = LLMJudge("gpt-4o", base_url=base_url, llm_pool=pool)
    started = time.perf_counter()
    judged = [judge.judge([f"hypothesis {h} of pair {p}" for h in range(hypotheses)],
                          name_a=f"set A of pair {p}", name_b=f"set B of pair {p}") for p in range(pairs)]
    return time.perf_counter() - started, judged, pool


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=16)
    parser.add_argument("--hypotheses", type=int, default=30, help="proposals judged per pair")
    parser.add_argument("--latency", type=float, default=0.3, help="seconds before the server answers each request")
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    with FakeOpenAIServer(respond=rubric_answer, latency=args.latency) as server:
        sequential, judged_sequential, _ = judge_pairs(server.base_url, 1, args.pairs, args.hypotheses)
        server.max_in_flight = 0
        concurrent, judged_concurrent, pool = judge_pairs(server.base_url, args.concurrency, args.pairs, args.hypotheses)
    requests = args.pairs * args.hypotheses
    print(f"judge over {args.pairs} pairs x {args.hypotheses} hypotheses = {requests} requests, "
          f"{args.latency * 1000:.0f} ms server latency")
    print(f"sequential (--llm-concurrency 1): {sequential:.2f} s")
    print(f"concurrent (--llm-concurrency {args.concurrency}): {concurrent:.2f} s "
          f"(at most {server.max_in_flight} requests in flight)")
    print(f"speed-up: {sequential / concurrent:.2f}x")
    print(f"judgements identical: {judged_sequential == judged_concurrent}")
    print(f"concurrent run, {usage_line(usage_record(pool.usage.rows(), PriceTable()))}")


if __name__ == "__main__":
    main()
