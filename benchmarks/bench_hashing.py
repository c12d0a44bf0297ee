"""Warm ``visdiff.rank`` over many unchanged files: listing and hashing before and after the
file-hash memo.

Generates 2 x N small JPEGs (128 px of noise, ~10 KB), fills the embedding cache with one
cold run, then times warm runs (every embedding already cached) two ways in one process,
best of ``--repeat`` each:

  no memo   every file read, its header parsed and its bytes hashed (the code before the memo);
  memo      unchanged files taken from the (path, size, mtime, ctime, inode) memo: one stat each.

The files sit in the OS page cache after the cold run, so "read" is a memory copy here; on
cold disks or network storage the memo saves far more. The scorer is a fixed random
projection (no model), so the times are listing, hashing, cache lookup and statistics.

    .venv/bin/python benchmarks/bench_hashing.py                 # 2 x 20,000 files
    .venv/bin/python benchmarks/bench_hashing.py --images 2000
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision.transforms import CenterCrop, Compose, Resize, ToTensor

import visdiff
from visdiff import cache_root

DIM = 64


class ProjectionScorer:
    """A stand-in scorer: 8x8 pixels through a fixed random projection."""

    spec = "bench:projection"
    cache_id = "bench-projection-64"
    device = torch.device("cpu")
    preprocess = Compose([Resize(8), CenterCrop(8), ToTensor()])
    _images = torch.randn(3 * 8 * 8, DIM, generator=torch.Generator().manual_seed(0))
    _texts = torch.randn(1000, DIM, generator=torch.Generator().manual_seed(1))

    def encode_images(self, pixels):
        return torch.nn.functional.normalize(pixels.flatten(1) @ self._images, dim=-1)

    def encode_texts(self, texts):
        return torch.nn.functional.normalize(self._texts[: len(texts)], dim=-1)

    def score(self, image_embeddings, text_embeddings):
        return image_embeddings @ text_embeddings.T


def generate(folder: Path, n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)).save(folder / f"{i:06d}.jpg", quality=80)


def best_time(run, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        table = run()
        times.append(time.perf_counter() - start)
        assert table.attrs["embeddings"]["encoded"] == 0
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=20_000, help="files per set")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        a, b = tmp / "a", tmp / "b"
        start = time.perf_counter()
        generate(a, args.images, 0)
        generate(b, args.images, 1)
        print(f"generated 2 x {args.images} JPEGs in {time.perf_counter() - start:.1f} s")
        scorer = ProjectionScorer()
        hypotheses = [f"hypothesis {j}" for j in range(10)]

        def rank():
            return visdiff.rank(hypotheses, a, b, scorer=scorer, cache_dir=tmp / "cache", show_progress=False)

        start = time.perf_counter()
        cold = rank()
        print(f"cold run (hash, decode, encode, write cache): {time.perf_counter() - start:.1f} s, "
              f"{cold.attrs['embeddings']['encoded']} encoded")
        with_memo = best_time(rank, args.repeat)
        file_hashes = cache_root.CacheRoot.file_hashes
        cache_root.CacheRoot.file_hashes = lambda self: None  # as before the memo
        no_memo = best_time(rank, args.repeat)
        cache_root.CacheRoot.file_hashes = file_hashes
    print(f"warm visdiff.rank, 2 x {args.images} files, best of {args.repeat}:")
    print(f"  no memo (every file read)   {no_memo:7.2f} s")
    print(f"  memo (files not read)       {with_memo:7.2f} s   ({no_memo / with_memo:.2f}x faster)")


if __name__ == "__main__":
    main()
