"""Interactive re-ranking: a kept ``visdiff.Comparison`` against one-shot ``visdiff.rank`` calls.

For each N, a fresh process works on 2 x N images whose 512-d embeddings are already in the
on-disk cache (filled beforehand by another process, as in ``bench_scale.py``), with a matrix
scorer standing in for CLIP after the image forward pass. Measured in that one process:

- ``visdiff.rank`` of 100 hypotheses (cache index load, lookup, scoring, exact statistics);
- making a ``Comparison`` (the same loading, done once) and its first ``.rank`` of the 100;
- later ``.rank`` calls with 10 new hypotheses against ``visdiff.rank`` of 10 hypotheses it
  has never seen either (the same work done the one-shot way: both embed their texts), and
  against ``visdiff.rank`` of the Comparison's 10, which it then finds in the text cache
  (this script's only comparison until 2026-11-29 16:06 UTC); and of the 100 old + 10 new
  against ``visdiff.rank`` of those 110 (every text cached for both); best of 3 for each,
  each repeat with hypotheses never seen before;
- the floor of a later call: the two bare score products of 10 new hypotheses (scorer
  only, no text embedding or statistics), best of 3;
- resident memory the Comparison keeps per 1,000 images (device memory on a GPU), and peak RSS.

Every Comparison table is checked equal to ``visdiff.rank``'s, exactly. Target: the later call with
10 new hypotheses <= 10% of ``visdiff.rank``'s time for the same work.

A stand-in text encoder costs little; a real one (CLIP's text tower) costs the same in both
calls when both embed their texts, and only the Comparison's when ``visdiff.rank`` finds
them cached.

    .venv/bin/python benchmarks/bench_interactive.py                  # N = 20k, 200k
    .venv/bin/python benchmarks/bench_interactive.py --sizes 20000 --device cuda
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
import pandas as pd
import torch

import bench_scale
from bench_scale import DIM, MatrixScorer, keys_for

OLD_HYPOTHESES = 100
NEW_HYPOTHESES = 10
REPEATS = 3


class TextSeededScorer(MatrixScorer):
    """:class:`bench_scale.MatrixScorer` with each text's embedding seeded by the text, so a
    hypothesis gets the same row however the texts are batched; on ``device``."""

    def __init__(self, device: str) -> None:
        self.device = torch.device(device)

    def encode_texts(self, texts):
        rows = [np.random.default_rng(int(hashlib.sha256(t.encode()).hexdigest()[:12], 16)).standard_normal(DIM)
                for t in texts]
        t = torch.from_numpy(np.stack(rows).astype(np.float32)).to(self.device)
        return torch.nn.functional.normalize(t, dim=-1)


def resident_mb(device: str) -> float:
    if device.startswith("cuda"):
        return torch.cuda.memory_allocated() / 2**20
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def timed(call):
    start = time.perf_counter()
    value = call()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - start, value


def measure(cache_dir: Path, n: int, device: str) -> dict:
    import visdiff
    from visdiff.image_sets import ImageItem, ImageSet

    sets = [ImageSet(tuple(ImageItem(key=k, source=f"{s}{i}") for i, k in enumerate(keys_for(s, n)))) for s in "ab"]
    options = visdiff.RunOptions(cache_dir=str(cache_dir), show_progress=False)
    scorer = TextSeededScorer(device)
    old = [f"hypothesis {j}" for j in range(OLD_HYPOTHESES)]

    def one_shot(hypotheses):
        return visdiff.rank(hypotheses, *sets, options, scorer=scorer)

    def same(kept, fresh):
        pd.testing.assert_frame_equal(kept, fresh, check_exact=True)

    rank_old_s, fresh_old = timed(lambda: one_shot(old))
    before_mb = resident_mb(device)
    setup_s, comparison = timed(lambda: visdiff.Comparison(*sets, options, scorer=scorer))
    kept_mb = resident_mb(device) - before_mb
    first_s, table = timed(lambda: comparison.rank(old))
    same(table, fresh_old)

    rows = {"later_new": [], "rank_own_new": [], "rank_new": [], "later_all": [], "rank_all": [], "products": []}
    for repeat in range(REPEATS):
        new = [f"new idea {repeat}.{j}" for j in range(NEW_HYPOTHESES)]
        own_new = [f"another idea {repeat}.{j}" for j in range(NEW_HYPOTHESES)]
        # Each embeds 10 texts it has never seen; then visdiff.rank of the Comparison's 10 finds them cached.
        later_new_s, kept_new = timed(lambda: comparison.rank(new))
        rank_own_new_s, fresh_own_new = timed(lambda: one_shot(own_new))
        rank_new_s, fresh_new = timed(lambda: one_shot(new))
        later_all_s, kept_all = timed(lambda: comparison.rank(old + new))
        rank_all_s, fresh_all = timed(lambda: one_shot(old + new))
        same(kept_new, fresh_new)
        same(kept_all, fresh_all)
        same(comparison.rank(own_new), fresh_own_new)
        text = scorer.encode_texts(new)
        products_s, _ = timed(lambda: [scorer.score(comparison.embeddings(side).float(), text) for side in "ab"])
        for name, seconds in zip(rows, (later_new_s, rank_own_new_s, rank_new_s, later_all_s, rank_all_s, products_s)):
            rows[name].append(seconds)
    best = {name: min(seconds) for name, seconds in rows.items()}
    return {
        "n": n, "device": device, "rank_old_s": rank_old_s, "setup_s": setup_s, "first_s": first_s, **best,
        "kept_mb_per_1k": kept_mb / (2 * n / 1000),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[20_000, 200_000])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--measure", type=int, metavar="N", help=argparse.SUPPRESS)
    parser.add_argument("--cache-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.cache_dir, args.measure, args.device)))
        return

    print(f"{DIM}-d float16 cache, {OLD_HYPOTHESES} hypotheses then {NEW_HYPOTHESES} new ones; "
          f"each N in a fresh process on {args.device}; later calls best of {REPEATS}; all tables equal visdiff.rank's")
    print("times in seconds, except the later call, the rank(10)s and the products: in milliseconds; "
          "rank(10 own): 10 texts new to it too (the same work); rank(10 cached): the Comparison's 10")
    print(f"{'N per set':>9} {'rank(100)':>9} {'setup':>7} {'1st .rank':>9} {'.rank(10 new)':>13} {'rank(10 own)':>12} "
          f"{'ratio':>6} {'rank(10 cached)':>15} {'ratio':>6} {'products':>8} {'floor':>6} {'.rank(110)':>10} "
          f"{'rank(110)':>9} {'ratio':>6} {'kept MB/1k':>10} {'peak MB':>8}")
    for n in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            # bench_scale.py fills the cache in a process of its own, as earlier runs would have.
            subprocess.run([sys.executable, bench_scale.__file__, "--cache-dir", tmp, "--child", "fill", str(n)], check=True)
            measured = subprocess.run([sys.executable, __file__, "--cache-dir", tmp, "--device", args.device,
                                       "--measure", str(n)], check=True, capture_output=True, text=True)
            r = json.loads(measured.stdout)
        print(f"{n:>9} {r['rank_old_s']:>9.3f} {r['setup_s']:>7.3f} {r['first_s']:>9.3f} {r['later_new'] * 1e3:>13.1f} "
              f"{r['rank_own_new'] * 1e3:>12.1f} {r['later_new'] / r['rank_own_new']:>6.3f} "
              f"{r['rank_new'] * 1e3:>15.1f} {r['later_new'] / r['rank_new']:>6.3f} {r['products'] * 1e3:>8.1f} "
              f"{r['products'] / r['rank_own_new']:>6.3f} {r['later_all']:>10.3f} "
              f"{r['rank_all']:>9.3f} {r['later_all'] / r['rank_all']:>6.3f} {r['kept_mb_per_1k']:>10.2f} "
              f"{r['peak_rss_mb']:>8.0f}")


if __name__ == "__main__":
    main()
