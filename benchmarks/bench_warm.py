"""Cold vs warm cache: the same `visdiff.compare` twice on the same image sets.

The cold run starts from an empty cache dir and includes loading the models; the warm run
builds the pipeline again from the same specs (models load lazily, on first use) and should
do no image forward pass and no captioning. Prints both times, their ratio, and the work
counters each run recorded.

    .venv/bin/python benchmarks/bench_warm.py                      # offline profile, examples/
    .venv/bin/python benchmarks/bench_warm.py --pair cat00         # a devbench pair
    .venv/bin/python benchmarks/bench_warm.py --profile laptop     # needs its models
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import visdiff

ROOT = Path(__file__).resolve().parent.parent
DEVBENCH = ROOT.parent / "shared" / "data" / "devbench" / "devbench.jsonl"


def image_sets(pair: str | None) -> tuple[object, object, str]:
    if pair is None:
        return ROOT / "examples" / "a", ROOT / "examples" / "b", "examples/a vs examples/b"
    for line in DEVBENCH.read_text().splitlines():
        record = json.loads(line)
        if record["id"] == pair:
            paths = lambda key: [DEVBENCH.parent / p for p in record[key]]  # noqa: E731
            return paths("set1_images"), paths("set2_images"), f"devbench {pair}: {record['set1']} vs {record['set2']}"
    raise SystemExit(f"no pair {pair!r} in {DEVBENCH}")


def timed_compare(set_a, set_b, *, profile: str, cache_dir: str) -> tuple[float, visdiff.CompareResult]:
    start = time.perf_counter()
    result = visdiff.compare(set_a, set_b, profile=profile, cache_dir=cache_dir, show_progress=False)
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="offline")
    parser.add_argument("--pair", help="devbench pair id (default: the examples/ pair)")
    args = parser.parse_args()
    set_a, set_b, label = image_sets(args.pair)
    with tempfile.TemporaryDirectory() as cache_dir:
        cold_s, cold = timed_compare(set_a, set_b, profile=args.profile, cache_dir=cache_dir)
        warm_s, warm = timed_compare(set_a, set_b, profile=args.profile, cache_dir=cache_dir)
    assert list(cold.table["hypothesis"]) == list(warm.table["hypothesis"]), "warm run ranked differently"
    print(f"pair      {label} ({cold.config['n_a']} + {cold.config['n_b']} images), profile {args.profile}")
    for name, seconds, result in (("cold", cold_s, cold), ("warm", warm_s, warm)):
        emb, cap = result.config["embeddings"], result.config["captions"]
        stages = ", ".join(f"{k} {v:.2f}" for k, v in result.timings.items() if k != "total")
        print(f"{name:<9} {seconds:7.2f} s   image forward passes {emb['encoded']:>4}  "
              f"cached {emb['cached']:>4}   captions generated {cap['captioned']:>4}   [{stages}]")
    print(f"warm/cold {warm_s / cold_s:.3f}  (target <= 0.05; cold includes model loading)")


if __name__ == "__main__":
    main()
