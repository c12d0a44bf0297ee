"""Wall time of the LLM judge over benchmark pairs, one request at a time vs the default
``--llm-concurrency``, against a loopback OpenAI-compatible server that answers each request
after a fixed latency (as a remote model would).

    .venv/bin/python benchmarks/bench_llm_concurrency.py [--pairs 16] [--hypotheses 30]
        [--latency 0.3] [--concurrency 8] [--bench-pairs 16]

Each pair's hypotheses are judged as ``visdiff bench`` judges them (:meth:`LLMJudge.judge`, all of
a pair's proposals, pair after pair), first with a pool of 1 (sequential), then with a pool of
``--concurrency``; no answer cache, so both runs send every request. The server answers a rubric
digit derived from the hypothesis, so the two runs' judgements must be identical (checked). Prints
both wall times, their ratio, the requests the server saw at most at once, and the usage line.

Then a whole benchmark run (:func:`visdiffbench.run_benchmark`, ``--bench-pairs`` small generated
pairs, the offline profile, the LLM judge on the same server): ``--llm-concurrency 1`` vs
``--concurrency``, where each pair is judged in the background while the next is compared. Each
run gets a fresh cache folder (every pair embedded and captioned anew, every judge question
sent); the models are built, and a run of the first pair loads what a process loads once,
before either (not timed). Prints both wall times, their ratio and whether the records'
judgements, scores and usage are identical. The comparisons use the CPU: on a loaded machine
they, not the judge, bound the concurrent run. About 4 minutes on 2 idle cores, 7 at load 5-6
(``--bench-pairs 0`` skips the whole run).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fake_openai import FakeOpenAIServer, Reply  # noqa: E402
from visdiff.llm import RequestPool  # noqa: E402
from visdiff.llm.prices import PriceTable  # noqa: E402
from visdiff.llm.usage import usage_line, usage_record  # noqa: E402
from visdiff.options import RunOptions  # noqa: E402
from visdiff.stages import RunStages  # noqa: E402
from visdiffbench import BenchConfig, LLMJudge, load_benchmark, run_benchmark  # noqa: E402

# What a whole run's records must agree on, whatever the concurrency.
JUDGED_FIELDS = ("pair_id", "hypotheses", "judged", "judge_scores", "diagnosis", "acc@1", "acc@5", "llm_usage")


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


def make_benchmark(folder: Path, pairs: int, images: int = 5) -> Path:
    """A release-format benchmark of ``pairs`` small pairs: each set a colour with noise."""
    rng = np.random.default_rng(0)
    rows = []
    for p in range(pairs):
        row = {"set1": f"set A of pair {p}", "set2": f"set B of pair {p}", "difference": "colour"}
        for side in ("1", "2"):
            colour = rng.integers(0, 256, 3)
            names = []
            for i in range(images):
                pixels = np.clip(colour + rng.normal(0, 25, (64, 64, 3)), 0, 255).astype(np.uint8)
                name = f"easy/{p}_{side}/{i}.png"
                (folder / name).parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(pixels).save(folder / name)
                names.append(name)
            row[f"set{side}_images"] = names
        rows.append(row)
    (folder / "easy.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return folder


def judged_fields(records: list[dict]) -> str:
    """The records' :data:`JUDGED_FIELDS` as JSON (a NaN statistic equals itself there)."""
    return json.dumps([{k: r.get(k) for k in JUDGED_FIELDS} for r in records], sort_keys=True)


def bench_run(base_url: str, concurrency: int, benchmark, work: Path, models: dict) -> tuple[float, list[dict]]:
    """Wall time and records of a whole benchmark run with the LLM judge (fresh cache)."""
    options = RunOptions(llm_concurrency=concurrency, cache_dir=work / f"cache-{concurrency}", show_progress=False)
    stages = RunStages(options, proposing=True, **models)
    judge = LLMJudge("gpt-4o", base_url=base_url, api_key="x", llm_pool=stages.llm_pool)
    started = time.perf_counter()
    run = run_benchmark(benchmark, work / f"out-{concurrency}", config=BenchConfig(run=options), judge=judge,
                        stages=stages, show_progress=False)
    return time.perf_counter() - started, run.records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=16)
    parser.add_argument("--hypotheses", type=int, default=30, help="proposals judged per pair")
    parser.add_argument("--latency", type=float, default=0.3, help="seconds before the server answers each request")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--bench-pairs", type=int, default=16, help="pairs of the whole benchmark run (0: none)")
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
    if args.bench_pairs:
        whole_run(args)


def whole_run(args) -> None:
    with tempfile.TemporaryDirectory() as tmp, FakeOpenAIServer(respond=rubric_answer, latency=args.latency) as server:
        work = Path(tmp)
        benchmark = load_benchmark(make_benchmark(work / "bench", args.bench_pairs))
        # Untimed: the models built, and whatever a process loads once (weights, the proposer's
        # vocabulary) loaded by a run of the first pair on a cache of its own.
        models = RunStages(RunOptions(cache_dir=work / "models", show_progress=False)).built_models()
        bench_run(server.base_url, args.concurrency, replace(benchmark, pairs=benchmark.pairs[:1]), work / "warm-up",
                  models)
        server.requests.clear()
        sequential, records_sequential = bench_run(server.base_url, 1, benchmark, work, models)
        asked = len(server.requests)
        server.max_in_flight = 0
        concurrent, records_concurrent = bench_run(server.base_url, args.concurrency, benchmark, work, models)
    same = judged_fields(records_sequential) == judged_fields(records_concurrent)
    print(f"whole benchmark run (run_benchmark, offline profile, LLM judge): {args.bench_pairs} pairs, "
          f"{asked} judge requests, {args.latency * 1000:.0f} ms server latency")
    print(f"sequential (--llm-concurrency 1): {sequential:.2f} s")
    print(f"concurrent (--llm-concurrency {args.concurrency}): {concurrent:.2f} s "
          f"(at most {server.max_in_flight} requests in flight)")
    print(f"wall time ratio (sequential / concurrent): {sequential / concurrent:.2f}x")
    print(f"records identical (judgements, scores, usage): {same}")


if __name__ == "__main__":
    main()
