"""Embedding throughput: the model's own forward pass vs the full visdiff path.

For one scorer and batch size, in one run:
  (a) limit: forward passes over pre-decoded, pre-processed tensors already in memory;
  (b) visdiff: JPEG files on disk -> hashing -> decode/preprocess workers -> forward ->
      float16 cache on disk (a fresh cache dir, so every image is encoded), once per
      ``--decode`` setting: "workers" (PIL in data-loader workers) and "device" (JPEG bytes
      decoded, resized and cropped on the scorer's device; what "auto" picks on CUDA).
Prints images/s of each and the ratio (b)/(a), and the seconds of each part of (b): hashing,
the reader (time the model waited for decoded batches), decoding on the device, the mapper
(forward passes) and the writer (shard commits). Each is repeated and the best run kept, so
a busy machine penalises all alike.

    .venv/bin/python benchmarks/bench_embed.py --scorer offline
    .venv/bin/python benchmarks/bench_embed.py --scorer vit-b-32-random
    .venv/bin/python benchmarks/bench_embed.py --images ../shared/data/devbench/images
    .venv/bin/python benchmarks/bench_embed.py --scorer vit-b-32-random --device cuda --batch-size 256 -n 4096
    .venv/bin/python benchmarks/bench_embed.py --scorer vit-b-32-random --decode device   # one path only

It also prints how far the device path's pixels are from the scorer's own transform (PIL,
full decode) over the first 256 JPEGs, in levels of 255: the share of values equal, off by
1, 2, 3+.
``--pixels-only`` prints just that (cheap, for a folder of real photos):

    .venv/bin/python benchmarks/bench_embed.py --scorer vit-b-32-random --pixels-only \
        --images ../shared/data/devbench/images

Without --images it generates JPEGs (640x480, smooth random content) in a temp dir.
"""

from __future__ import annotations

import argparse
import io
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from visdiff.embeddings.cache import EmbeddingCache
from visdiff.embeddings.encode import embed_image_set
from visdiff.embeddings.jpeg import decode_jpegs, device_decodable
from visdiff.embeddings.settings import EmbedSettings
from visdiff.embeddings.transforms import split_transform
from visdiff.sources import load_image_set
from visdiff.sources.folder import list_image_files
from visdiff.scorers import create_scorer
from visdiff.timing import Timings


def generate_jpegs(folder: Path, n: int, size=(640, 480), seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        # Upsampled low-res noise: photo-like file sizes, unlike white noise.
        small = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
        Image.fromarray(small).resize(size, Image.BICUBIC).save(folder / f"{i:05d}.jpg", quality=90)


def random_vit_spec(folder: Path, arch: str = "ViT-B-32") -> str:
    import open_clip

    torch.manual_seed(0)
    path = folder / f"{arch}-random.pt"
    torch.save(open_clip.create_model(arch).state_dict(), path)
    return f"open_clip:{arch}:{path}"


def limit_rate(scorer, files: list[Path], batch_size: int) -> float:
    """Images/s of encode_images alone on tensors prepared beforehand."""
    preprocess = scorer.preprocess
    pixels = torch.stack([preprocess(Image.open(f).convert("RGB")) for f in files])
    start = time.perf_counter()
    for i in range(0, len(files), batch_size):
        scorer.encode_images(pixels[i : i + batch_size])
    return len(files) / (time.perf_counter() - start)


def pixel_levels(scorer, files: list[Path]) -> np.ndarray:
    """Counts of |device path - scorer's transform| in levels of 255 (0, 1, 2, 3+) over the
    JPEGs of ``files``, the device path run on ``scorer.device``."""
    split = split_transform(scorer.preprocess)
    std = torch.tensor(split.std).view(3, 1, 1)
    counts = np.zeros(4, np.int64)
    for file in files:
        data = file.read_bytes()
        if not device_decodable(data):
            continue
        [pixels], _ = decode_jpegs([data], [str(file)], split, scorer.device)
        reference = scorer.preprocess(Image.open(io.BytesIO(data)).convert("RGB"))
        normalised = split.normalize(pixels[None], scorer.device)[0].cpu()
        levels = ((normalised - reference) * std * 255).abs().round().long().clamp(max=3)
        counts += np.bincount(levels.flatten().numpy(), minlength=4)
    return counts


def visdiff_rate(scorer, folder: Path, batch_size: int, num_workers: int | None,
                 decode: str) -> tuple[float, dict[str, float]]:
    """Images/s from files on disk to embeddings in a fresh on-disk cache, and the seconds
    of each part: listing and hashing the files, then the reader, mapper and writer seams."""
    with tempfile.TemporaryDirectory() as cache_dir:
        timings = Timings()
        start = time.perf_counter()
        with timings.stage("hash"):
            image_set = load_image_set(folder)
        cache = EmbeddingCache(Path(cache_dir), scorer.cache_id)
        with timings.stage("embed"):
            emb, usable = embed_image_set(scorer, image_set, cache=cache, timings=timings, settings=EmbedSettings(
                batch_size=batch_size, num_workers=num_workers, show_progress=False, decode=decode))
        elapsed = time.perf_counter() - start
    assert emb.shape[0] == len(usable) == len(image_set)
    return len(image_set) / elapsed, timings.as_dict()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scorer", default="offline", help="scorer spec, or 'vit-b-32-random'")
    parser.add_argument("--images", type=Path, help="folder of JPEGs (default: generated)")
    parser.add_argument("-n", type=int, default=256, help="generated images")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--num-workers", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default=None, help="cpu or cuda (default: best available)")
    parser.add_argument("--decode", default="workers,device", help="decode settings to measure, comma-separated")
    parser.add_argument("--pixels-only", action="store_true", help="only compare the device path's pixels")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        folder = args.images or tmp / "images"
        if args.images is None:
            generate_jpegs(folder, args.n)
        files = list_image_files(folder).files
        spec = random_vit_spec(tmp) if args.scorer == "vit-b-32-random" else args.scorer
        load_start = time.perf_counter()
        scorer = create_scorer(spec, device=args.device)
        scorer.encode_images(torch.stack([scorer.preprocess(Image.open(files[0]).convert("RGB"))]))  # load + warm up
        load_seconds = time.perf_counter() - load_start
        # One image at a time: the first 256 suffice unless that is all this run measures.
        levels = pixel_levels(scorer, files if args.pixels_only else files[:256])
        print(f"device-path pixels vs the scorer's transform over {levels.sum()} values of the JPEGs "
              f"(on {scorer.device}): equal {levels[0] / levels.sum():.4%}, off by 1 {levels[1] / levels.sum():.4%}, "
              f"by 2 {levels[2] / levels.sum():.5%}, by 3+ {levels[3] / levels.sum():.5%}")
        if args.pixels_only:
            return
        decodes = args.decode.split(",")
        limit, full = [], {decode: [] for decode in decodes}
        for _ in range(args.repeats):  # interleaved, so load changes hit all alike
            limit.append(limit_rate(scorer, files, args.batch_size))
            for decode in decodes:
                full[decode].append(visdiff_rate(scorer, folder, args.batch_size, args.num_workers, decode))
    best_limit = max(limit)
    print(f"scorer            {spec.split(':/')[0]} on {scorer.device}  (load {load_seconds:.1f} s)")
    print(f"images            {len(files)} from {folder if args.images else 'generated 640x480 JPEGs'}")
    print(f"batch size        {args.batch_size}, torch threads {torch.get_num_threads()}, cpus {os.cpu_count()}")
    print(f"(a) forward only  {best_limit:8.1f} img/s   runs: {', '.join(f'{r:.1f}' for r in limit)}")
    for decode, runs in full.items():
        best_full, parts = max(runs)
        print(f"(b) visdiff path, decode={decode}")
        print(f"                  {best_full:8.1f} img/s   runs: {', '.join(f'{r:.1f}' for r, _ in runs)}")
        print("    best run, s    " + ", ".join(f"{part} {seconds:.2f}" for part, seconds in parts.items())
              + "  (embed = cache lookup and assembly; embed_read = waiting for decoded batches)")
        print(f"    ratio (b)/(a) {best_full / best_limit:.3f}")


if __name__ == "__main__":
    main()
