"""Ranking at scale from cached embeddings: time and peak memory vs number of images.

For each N, a fresh process ranks 100 hypotheses over 2 x N images whose 512-d embeddings
are already in the on-disk cache (written beforehand by another process): cache index load,
embedding lookup, text scoring, exact statistics. It prints wall time and peak RSS; peak
RSS should grow linearly in N (no N^2 matrices). Also prints cache bytes per image.

    .venv/bin/python benchmarks/bench_scale.py                 # N = 100k, 300k, 1M
    .venv/bin/python benchmarks/bench_scale.py --sizes 20000
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

DIM = 512
HYPOTHESES = 100


class MatrixScorer:
    """Stands in for CLIP after the image forward pass: fixed random text embeddings, dot-product scores."""

    spec = "bench:matrix"
    cache_id = "bench-matrix-512"
    device = torch.device("cpu")

    def encode_texts(self, texts):
        rng = np.random.default_rng(1)
        t = torch.from_numpy(rng.standard_normal((len(texts), DIM)).astype(np.float32))
        return torch.nn.functional.normalize(t, dim=-1)

    def score(self, image_embeddings, text_embeddings):
        return image_embeddings @ text_embeddings.T


def keys_for(prefix: str, n: int) -> list[str]:
    return [hashlib.sha256(f"{prefix}{i}".encode()).hexdigest() for i in range(n)]


def fill(cache_dir: Path, n: int) -> None:
    from visdiff.embeddings.cache import EmbeddingCache

    cache = EmbeddingCache(cache_dir, MatrixScorer.cache_id)
    rng = np.random.default_rng(0)
    for side in "ab":
        keys = keys_for(side, n)  # once: hashing the keys of every shard again dominated filling 2 x 1M
        for start in range(0, n, 50_000):  # shards as successive runs would write them
            count = min(50_000, n - start)
            emb = rng.standard_normal((count, DIM), dtype=np.float32) + (0.05 if side == "a" else 0.0)
            emb /= np.linalg.norm(emb, axis=1, keepdims=True)
            cache.add(keys[start : start + count], emb)


def measure(cache_dir: Path, n: int) -> dict:
    from visdiff.cache_root import CacheRoot
    from visdiff.embeddings.scoring import Scoring
    from visdiff.embeddings.settings import EmbedSettings
    from visdiff.image_sets import ImageItem, ImageSet
    from visdiff.ranking import rank_scores

    sets = {s: ImageSet(tuple(ImageItem(key=k, source=f"{s}{i}") for i, k in enumerate(keys_for(s, n)))) for s in "ab"}
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    scorer = MatrixScorer()
    start = time.perf_counter()
    scoring = Scoring(scorer, cache=CacheRoot(cache_dir), settings=EmbedSettings(show_progress=False))
    [(emb_a, _), (emb_b, _)] = scoring.embed_sets(sets["a"], sets["b"])
    loaded = time.perf_counter()
    hypotheses = [f"hypothesis {j}" for j in range(HYPOTHESES)]
    scores_a, scores_b = scoring.score_embeddings([emb_a, emb_b], hypotheses)
    table = rank_scores(scores_a, scores_b, hypotheses)
    done = time.perf_counter()
    assert len(table) == HYPOTHESES and table["auroc"].between(0, 1).all()
    return {
        "n": n,
        "load_s": loaded - start,
        "rank_s": done - loaded,
        "total_s": done - start,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "baseline_rss_mb": rss_before / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 300_000, 1_000_000])
    parser.add_argument("--child", nargs=2, metavar=("MODE", "N"), help=argparse.SUPPRESS)
    parser.add_argument("--cache-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, n = args.child[0], int(args.child[1])
        if mode == "fill":
            fill(args.cache_dir, n)
        else:
            print(json.dumps(measure(args.cache_dir, n)))
        return

    print(f"{HYPOTHESES} hypotheses, {DIM}-d float16 cache, each N in a fresh process")
    print(f"{'N per set':>10} {'fill s':>8} {'load s':>8} {'rank s':>8} {'total s':>8} {'peak RSS MB':>12} "
          f"{'MB / 1k img':>12}")
    for n in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            child = [sys.executable, __file__, "--cache-dir", tmp, "--child"]
            fill_start = time.perf_counter()
            subprocess.run(child + ["fill", str(n)], check=True)
            fill_s = time.perf_counter() - fill_start
            r = json.loads(subprocess.run(child + ["measure", str(n)], check=True, capture_output=True, text=True).stdout)
            # The image store is the big one; the text store beside it holds the hypotheses.
            disk = max(sum(f.stat().st_size for f in store.iterdir()) for store in (Path(tmp) / "embeddings").iterdir())
        growth = (r["peak_rss_mb"] - r["baseline_rss_mb"]) / (2 * n / 1000)
        print(f"{n:>10} {fill_s:>8.1f} {r['load_s']:>8.2f} {r['rank_s']:>8.2f} {r['total_s']:>8.2f} "
              f"{r['peak_rss_mb']:>12.0f} {growth:>12.2f}")
    print(f"cache on disk: {disk / (2 * n):.1f} bytes per image ({DIM} x float16 + 32-byte key + .npy headers)")


if __name__ == "__main__":
    main()
