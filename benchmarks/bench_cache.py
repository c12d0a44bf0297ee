"""Embedding cache: cold vs warm ``visdiff.rank`` on the same images and cache folder.

Generates JPEGs (256 px, gradients plus noise) in a temp folder, split into sets A and B,
then runs ``visdiff.rank`` twice with the same fresh cache dir: cold (every image decoded
and encoded) and warm (every embedding read from the cache). Prints both wall times, the
image forward passes of each (``table.attrs["embeddings"]["encoded"]``), that both runs
give the same table, and the cache bytes per image. ``visdiff rank`` on the command line
runs this same function after parsing its options.

The default scorer is a tiny random open_clip ViT saved to a file (built like the test
fixture), so the script runs offline in seconds; ``--scorer vit-b-32-random`` uses a
full-size ViT-B-32 with random weights (realistic compute, ~600 MB temp file), and any
other value is used as a scorer spec (e.g. ``open_clip:ViT-B-32:laion2b_s34b_b79k``).

Run::

    .venv/bin/python benchmarks/bench_cache.py
    .venv/bin/python benchmarks/bench_cache.py --images 200 --scorer vit-b-32-random
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

import visdiff
from visdiff.cache_root import CacheRoot

TINY_ARCH = "visdiff-bench-tiny-vit"
TINY_CONFIG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "head_width": 32, "patch_size": 8},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2},
}
HYPOTHESES = ["warm colours", "cool colours", "strong horizontal gradient", "noisy texture", "a photo of a dog"]


def generate_jpegs(folder: Path, n: int, *, size: int = 256, warm: bool, seed: int) -> None:
    """Colour gradients plus noise; set A leans red, set B leans blue."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    ramp = np.linspace(0, 1, size)[None, :, None]
    for i in range(n):
        base = rng.uniform(0.2, 0.8, 3) + (np.array([0.2, 0, -0.2]) if warm else np.array([-0.2, 0, 0.2]))
        image = base * (0.5 + ramp) * 255 + rng.normal(0, 25, (size, size, 3))
        Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(folder / f"{i:04d}.jpg", quality=90)


def random_weights_spec(folder: Path, arch: str, config: dict | None) -> str:
    import open_clip
    import torch

    if config is not None:
        config_path = folder / f"{arch}.json"
        config_path.write_text(json.dumps(config))
        open_clip.add_model_config(config_path)
    torch.manual_seed(0)
    weights = folder / f"{arch}-random.pt"
    logging.getLogger().setLevel(logging.ERROR)  # open_clip warns that the weights are random
    torch.save(open_clip.create_model(arch).state_dict(), weights)
    return f"open_clip:{arch}:{weights}"


def timed_rank(set_a: Path, set_b: Path, *, scorer: str, cache_dir: Path, batch_size: int):
    start = time.perf_counter()
    table = visdiff.rank(HYPOTHESES, set_a, set_b, scorer=scorer, cache_dir=cache_dir,
                         batch_size=batch_size, show_progress=False)
    return time.perf_counter() - start, table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=200, help="images in total (half in A, half in B)")
    parser.add_argument("--size", type=int, default=256, help="image side in pixels")
    parser.add_argument("--scorer", default="tiny", help="'tiny', 'vit-b-32-random' or a scorer spec")
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        generate_jpegs(root / "a", args.images // 2, size=args.size, warm=True, seed=0)
        generate_jpegs(root / "b", args.images - args.images // 2, size=args.size, warm=False, seed=1)
        if args.scorer == "tiny":
            scorer = random_weights_spec(root, TINY_ARCH, TINY_CONFIG)
        elif args.scorer == "vit-b-32-random":
            scorer = random_weights_spec(root, "ViT-B-32", None)
        else:
            scorer = args.scorer
        cache_dir = root / "cache"
        cold_s, cold = timed_rank(root / "a", root / "b", scorer=scorer, cache_dir=cache_dir, batch_size=args.batch_size)
        warm_s, warm = timed_rank(root / "a", root / "b", scorer=scorer, cache_dir=cache_dir, batch_size=args.batch_size)

        stores = [s for s in CacheRoot(cache_dir).info() if s.kind == "embeddings"]
        image_store = max(stores, key=lambda s: s.entries)  # the text store holds only the hypotheses
        n_images = cold.attrs["n_a"] + cold.attrs["n_b"]
        same = cold.drop(columns="hypothesis").equals(warm.drop(columns="hypothesis")) and cold["hypothesis"].equals(warm["hypothesis"])

        print("=== bench_cache ===")
        print(f"scorer: {cold.attrs['scorer']}  device: {visdiff.create_scorer(scorer).device}")
        print(f"images: {n_images} JPEG ({args.size}x{args.size}), {len(HYPOTHESES)} hypotheses, batch {args.batch_size}")
        print(f"cold: {cold_s:8.3f} s   image forward passes: {cold.attrs['embeddings']['encoded']:4d}   cached: {cold.attrs['embeddings']['cached']}")
        print(f"warm: {warm_s:8.3f} s   image forward passes: {warm.attrs['embeddings']['encoded']:4d}   cached: {warm.attrs['embeddings']['cached']}")
        print(f"speed-up warm vs cold: {cold_s / warm_s:.1f}x   identical tables: {same}")
        print(f"cache: {image_store.entries} embeddings in {image_store.shards} shard(s), "
              f"{image_store.bytes} bytes = {image_store.bytes / image_store.entries:.1f} bytes/image")


if __name__ == "__main__":
    main()
