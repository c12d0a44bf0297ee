"""Cache index load time with many small shards, before and after ``visdiff cache compact``.

Runs that commit a shard every few seconds leave many small shards; every run opens each
one when it loads the store's index. This writes ``--shards`` shards of ``--rows`` rows
(512-d float16, as a ViT-B-32 store) through ``EmbeddingCache.add``, times a fresh index
load (best of ``--repeat``), compacts to 16,384-row shards (the default shard size), times
the load again, and checks that every row is still found, unchanged.

A scorer's text store gains a shard with every call that embeds new texts (an interactive
``Comparison.rank``, each run of a sweep) and merges its small shards itself when it loads
more than ``COMPANION_MAX_SMALL_SHARDS``. With ``--text-shards`` such a store of that many
10-row shards is written, then three fresh store objects look up 10 of its texts: with
merging turned off (every process's cost before), the one that merges, and the next.

    .venv/bin/python benchmarks/bench_compact.py                     # 10,000 shards x 10 rows
    .venv/bin/python benchmarks/bench_compact.py --shards 1000
    .venv/bin/python benchmarks/bench_compact.py --shards 0 --text-shards 300 1000 3000
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import time
from pathlib import Path

import numpy as np

from visdiff.embeddings.cache import DEFAULT_SHARD_IMAGES, EmbeddingCache

DIM = 512


def load_seconds(folder: Path, cache_id: str, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        EmbeddingCache(folder, cache_id).index  # noqa: B018 - loading it is what is timed
        times.append(time.perf_counter() - start)
    return min(times)


def text_store_lookups(folder: Path, shards: int, rows_per_shard: int = 10) -> None:
    """The first lookup of fresh text-store objects: merging off, merging, merged."""
    keys = [hashlib.sha256(f"text {i}".encode()).hexdigest() for i in range(shards * rows_per_shard)]
    rows = np.random.default_rng(0).standard_normal((len(keys), DIM)).astype(np.float16)
    writer = EmbeddingCache(folder, "bench-text").companion("text")
    writer.compact_above = None  # as an earlier version left it
    for i in range(0, len(keys), rows_per_shard):
        writer.add(keys[i:i + rows_per_shard], rows[i:i + rows_per_shard])
    seconds, counts = [], []
    for merge in (False, True, True):
        store = EmbeddingCache(folder, "bench-text").companion("text")
        if not merge:
            store.compact_above = None
        start = time.perf_counter()
        found, stored = store.lookup(keys[:rows_per_shard])
        seconds.append(time.perf_counter() - start)
        counts.append(len(list(store.path.glob("*.keys.npy"))))
        assert found.all() and np.array_equal(stored, rows[:rows_per_shard])
    print(f"text store of {shards} shards x {rows_per_shard} rows, first lookup of a fresh store: "
          f"as left {seconds[0]:.3f} s, merging {seconds[1]:.3f} s ({counts[0]} -> {counts[1]} shards), "
          f"then {seconds[2]:.4f} s ({seconds[0] / seconds[2]:.0f}x faster than as left)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shards", type=int, default=10_000)
    parser.add_argument("--rows", type=int, default=10, help="rows per shard")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--text-shards", type=int, nargs="*", default=[], metavar="N",
                        help="also time text stores of N shards each (merged when loaded)")
    args = parser.parse_args()
    for shards in args.text_shards:
        with tempfile.TemporaryDirectory() as tmp:
            text_store_lookups(Path(tmp), shards)
    if not args.shards:
        return
    rng = np.random.default_rng(0)
    n = args.shards * args.rows
    keys = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(n)]
    rows = rng.standard_normal((n, DIM)).astype(np.float16)
    with tempfile.TemporaryDirectory() as tmp:
        folder, cache_id = Path(tmp), "bench-compact"
        store = EmbeddingCache(folder, cache_id)
        start = time.perf_counter()
        for i in range(0, n, args.rows):
            store.add(keys[i:i + args.rows], rows[i:i + args.rows])
        write_s = time.perf_counter() - start
        before = load_seconds(folder, cache_id, args.repeat)
        start = time.perf_counter()
        shards_before, shards_after = EmbeddingCache(folder, cache_id).compact(DEFAULT_SHARD_IMAGES)
        compact_s = time.perf_counter() - start
        after = load_seconds(folder, cache_id, args.repeat)
        found, stored = EmbeddingCache(folder, cache_id).lookup(keys)
        assert found.all() and np.array_equal(stored, rows)
    print(f"{n} rows of {DIM}-d float16 written as {args.shards} shards of {args.rows} in {write_s:.1f} s")
    print(f"index load, best of {args.repeat}: {shards_before} shards {before:.3f} s -> "
          f"{shards_after} shards {after:.4f} s ({before / after:.0f}x faster); compact took {compact_s:.1f} s; "
          "every row found unchanged")


if __name__ == "__main__":
    main()
