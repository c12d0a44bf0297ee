"""Cache index load time with many small shards, before and after ``visdiff cache compact``.

Runs that commit a shard every few seconds leave many small shards; every run opens each
one when it loads the store's index. This writes ``--shards`` shards of ``--rows`` rows
(512-d float16, as a ViT-B-32 store) through ``EmbeddingCache.add``, times a fresh index
load (best of ``--repeat``), compacts to 16,384-row shards (the default shard size), times
the load again, and checks that every row is still found, unchanged.

    .venv/bin/python benchmarks/bench_compact.py                     # 10,000 shards x 10 rows
    .venv/bin/python benchmarks/bench_compact.py --shards 1000
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import time
from pathlib import Path

import numpy as np

from visdiff.embeddings.cache import EmbeddingCache
from visdiff.embeddings.writer import DEFAULT_SHARD_IMAGES

DIM = 512


def load_seconds(folder: Path, cache_id: str, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        EmbeddingCache(folder, cache_id).index  # noqa: B018 - loading it is what is timed
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shards", type=int, default=10_000)
    parser.add_argument("--rows", type=int, default=10, help="rows per shard")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
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
