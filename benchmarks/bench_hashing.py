"""``visdiff.rank`` over many files: cold runs before and after hashing and decoding from one
read, warm runs before and after the file-hash memo.

Generates 2 x N small JPEGs (128 px of noise, ~10 KB). First, cold runs (empty cache dir
each time), alternating, best of ``--cold-repeat`` each, with the files' pages dropped from
the OS page cache before every run (``posix_fadvise(DONTNEED)`` per file), so reads go to
the disk:

  two reads   every file read to hash it, then again to decode it (``HELD_BYTES_PER_SET = 0``,
              the code before);
  one read    the bytes read for hashing kept for decoding (the default).

The decoding read of "two reads" is then served by the page cache (the hashing read just
filled it), so both kinds read the disk once. Sets larger than the page cache lose that:
the same pair is run again with the files also dropped between hashing and decoding
(wrapping ``Scoring.embed_sets``), which stands for such a set.

Then it fills the embedding cache with one cold run and times warm runs (every embedding
already cached) two ways in one process, best of ``--repeat`` each:

  no memo   every file read, its header parsed and its bytes hashed (the code before the memo);
  memo      unchanged files taken from the (path, size, mtime, ctime, inode) memo: one stat each.

The files sit in the OS page cache after the cold run, so "read" is a memory copy here; on
cold disks or network storage the memo saves far more. The scorer is a fixed random
projection (no model), so the times are listing, hashing, cache lookup and statistics.

    .venv/bin/python benchmarks/bench_hashing.py                 # 2 x 20,000 files
    .venv/bin/python benchmarks/bench_hashing.py --images 2000 --cold-repeat 3
    .venv/bin/python benchmarks/bench_hashing.py --cold-repeat 0   # warm runs only
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision.transforms import CenterCrop, Compose, Resize, ToTensor

import visdiff
from visdiff import cache_root, image_sets

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


def drop_from_page_cache(*folders: Path) -> None:
    """Evict the files' pages (written back first), so the next read comes from the disk."""
    for folder in folders:
        for path in folder.iterdir():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def cold_times(rank, folders: tuple[Path, Path], cache_dirs, repeat: int,
               evict_before_decode: bool) -> dict[str, float]:
    """Best cold-run seconds with the hashed bytes dropped (two reads) and kept (one read)."""
    from visdiff.embeddings.scoring import Scoring

    held = image_sets.HELD_BYTES_PER_SET
    embed_sets = Scoring.embed_sets
    if evict_before_decode:
        def evicting(self, *sets):
            drop_from_page_cache(*folders)
            return embed_sets(self, *sets)

        Scoring.embed_sets = evicting
    times: dict[str, list[float]] = {"two reads": [], "one read": []}
    for _ in range(repeat):
        for name, budget in (("two reads", 0), ("one read", held)):
            image_sets.HELD_BYTES_PER_SET = budget
            drop_from_page_cache(*folders)
            start = time.perf_counter()
            table = rank(next(cache_dirs))
            times[name].append(time.perf_counter() - start)
            assert table.attrs["embeddings"]["cached"] == 0 and table.attrs["embeddings"]["encoded"] > 0
    image_sets.HELD_BYTES_PER_SET = held
    Scoring.embed_sets = embed_sets
    return {name: min(seconds) for name, seconds in times.items()}


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
    parser.add_argument("--cold-repeat", type=int, default=2, help="cold runs of each kind (0: none)")
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

        def rank(cache_dir=tmp / "cache"):
            return visdiff.rank(hypotheses, a, b, scorer=scorer, cache_dir=cache_dir, show_progress=False)

        cache_dirs = (tmp / f"cold{i}" for i in range(10**6))
        cold_seconds = {evict: cold_times(rank, (a, b), cache_dirs, args.cold_repeat, evict)
                        for evict in (False, True)} if args.cold_repeat else None

        start = time.perf_counter()
        cold = rank()
        print(f"cold run (hash, decode, encode, write cache): {time.perf_counter() - start:.1f} s, "
              f"{cold.attrs['embeddings']['encoded']} encoded")
        with_memo = best_time(rank, args.repeat)
        file_hashes = cache_root.CacheRoot.file_hashes
        cache_root.CacheRoot.file_hashes = lambda self: None  # as before the memo
        no_memo = best_time(rank, args.repeat)
        cache_root.CacheRoot.file_hashes = file_hashes
    for evict, seconds in (cold_seconds or {}).items():
        print(f"cold visdiff.rank, 2 x {args.images} files, page cache dropped before the run"
              f"{' and again before decoding' if evict else ''}, best of {args.cold_repeat}:")
        print(f"  two reads (hash, then decode)  {seconds['two reads']:7.2f} s")
        print(f"  one read (hash and decode)     {seconds['one read']:7.2f} s   "
              f"({seconds['two reads'] / seconds['one read']:.2f}x faster)")
    print(f"warm visdiff.rank, 2 x {args.images} files, best of {args.repeat}:")
    print(f"  no memo (every file read)   {no_memo:7.2f} s")
    print(f"  memo (files not read)       {with_memo:7.2f} s   ({no_memo / with_memo:.2f}x faster)")


if __name__ == "__main__":
    main()
