"""Several sets: one ``visdiff.compare_many`` against each set compared with the others separately.

Three devbench category sets (dogs and birds of pair cat00, fish of cat01: 56 photos), the
offline profile, models built once and given to every run (so the runs differ only in what
they embed and compute):

- ``compare_many([dogs, birds, fish])``: every image embedded once;
- the same three comparisons run separately, ``compare(set, the other two pooled)`` for each
  set: every run embeds all 56 images.

Both without the cache (each run embeds what it needs) and with a warm cache (embeddings
served from it). Best of ``--repeats``, interleaved. Prints per set the top hypothesis and
its AUROC of both, and the time ratio. Also writes the table the README's command reads
(``--table``: path and ``category`` columns).

    .venv/bin/python benchmarks/bench_multiset.py [--devbench ../shared/data/devbench] [--repeats 2] [--table t.csv]
    .venv/bin/python benchmarks/bench_multiset.py --sets cat02:set1,cat02:set2,cat01:set2 --repeats 1
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import pandas as pd

import visdiff
from visdiff.options import RunOptions
from visdiff.stages import RunStages

SETS = "cat00:set1,cat00:set2,cat01:set1"  # dogs, birds, fish


def devbench_sets(root: Path, sets: str) -> dict[str, list[Path]]:
    """``PAIR:SIDE,...`` of devbench.jsonl -> {set name: image paths}."""
    pairs = {p["id"]: p for p in map(json.loads, (root / "devbench.jsonl").read_text().splitlines())}
    chosen = [item.split(":") for item in sets.split(",")]
    return {pairs[pair][side]: [root / image for image in pairs[pair][f"{side}_images"]] for pair, side in chosen}


def run_many(sets, **options):
    start = time.perf_counter()
    result = visdiff.compare_many(sets, **options)
    return time.perf_counter() - start, {name: result[name].table.iloc[0] for name in result.names}


def run_separately(sets, **options):
    start, tops = time.perf_counter(), {}
    for name, images in sets.items():
        others = [path for other, paths in sets.items() if other != name for path in paths]
        tops[name] = visdiff.compare(images, others, **options).table.iloc[0]
    return time.perf_counter() - start, tops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devbench", type=Path, default=Path("../shared/data/devbench"))
    parser.add_argument("--sets", default=SETS, help="Devbench sets as PAIR:SIDE,... (default: dogs, birds, fish).")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--table", type=Path, default=None, help="Also write the sets as a CSV table here.")
    args = parser.parse_args()
    sets = devbench_sets(args.devbench, args.sets)
    if args.table is not None:
        rows = [{"path": str(p.resolve()), "category": name} for name, paths in sets.items() for p in paths]
        pd.DataFrame(rows).to_csv(args.table, index=False)
    print("sets:", {name: len(paths) for name, paths in sets.items()})
    models = RunStages(RunOptions.build(profile="offline")).built_models()
    with tempfile.TemporaryDirectory() as cache:
        for label, cache_options in (("no cache", {"use_cache": False}), ("warm cache", {"cache_dir": cache})):
            options = {"profile": "offline", "show_progress": False, **models, **cache_options}
            if "cache_dir" in cache_options:
                run_many(sets, **options)  # fills the cache
            best = {"many": float("inf"), "separate": float("inf")}
            for _ in range(args.repeats):
                seconds, tops_many = run_many(sets, **options)
                best["many"] = min(best["many"], seconds)
                seconds, tops_separate = run_separately(sets, **options)
                best["separate"] = min(best["separate"], seconds)
            print(f"\n{label}: compare_many {best['many']:.2f} s, three separate comparisons "
                  f"{best['separate']:.2f} s, ratio separate / many {best['separate'] / best['many']:.2f}x")
            for name in sets:
                many, separate = tops_many[name], tops_separate[name]
                print(f"  {name:>6}: many top-1 {many['hypothesis']!r} AUROC {many['auroc']:.3f}; "
                      f"separate top-1 {separate['hypothesis']!r} AUROC {separate['auroc']:.3f}")


if __name__ == "__main__":
    main()
