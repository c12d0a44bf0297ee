"""How much the scorer's numerics move AUROC: fp16 against fp32, and JPEGs decoded at reduced
scale (``Image.draft``, visdiff's default) against full scale (the reference's), on the
development set (issue #26, item 10). The paper profile now uses fp32 and full decoding; this
measures what the default's shortcuts change.

    .venv/bin/python benchmarks/bench_numerics.py [--devbench ../shared/data/devbench] [--arch ViT-S-32] [--upscale 3]

No CLIP weights ship offline, so the model is ``--arch`` with random weights (seeded, saved to
a temporary file and loaded as ``open_clip:ARCH:FILE``): the ranking is meaningless, the
numeric difference is not. Every pair of devbench is ranked with the same hypotheses (both set
names and the difference) under each setting; the table gives, against fp32 + full decoding,
the largest and the mean |AUROC difference| over all (pair, hypothesis) cells and how many of
the pairs change their top-1 hypothesis. fp16 runs on this CPU here (torch's CPU half kernels),
the GPU's would differ in rounding only. Reduced-scale decoding only applies to a JPEG at least
twice the model's input (448 px for 224): devbench's photos are at most 320 px, so ``--upscale
K`` also measures copies of them enlarged K times (JPEG quality 90, in a temporary folder).
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import visdiff

SETTINGS = {"fp32, full decode": ("fp32", True), "fp32, draft decode": ("fp32", False),
            "fp16, full decode": ("fp16", True), "fp16, draft decode": ("fp16", False)}
BASELINE = "fp32, full decode"


def random_weights(arch: str, folder: Path) -> str:
    import open_clip

    torch.manual_seed(0)
    path = folder / f"{arch}-random.pt"
    torch.save(open_clip.create_model(arch).state_dict(), path)
    return f"open_clip:{arch}:{path}"


def upscaled(devbench: Path, factor: int, folder: Path) -> Path:
    """A copy of devbench (its jsonl) with every image enlarged ``factor`` times, as JPEG."""
    copy = folder / f"devbench-x{factor}"
    shutil.copytree(devbench, copy, ignore=shutil.ignore_patterns("*.jpg", "*.jpeg", "*.png"))
    for image in (devbench / "images").iterdir():
        with Image.open(image) as original:
            original.convert("RGB").resize((original.width * factor, original.height * factor), Image.BICUBIC).save(
                copy / "images" / image.name, format="JPEG", quality=90)
    return copy


def aurocs(pairs: list[dict], root: Path, spec: str, precision: str, full_decode: bool) -> np.ndarray:
    """(pairs, 3) AUROCs of each pair's set names and difference."""
    rows = []
    for pair in pairs:
        hypotheses = [pair["set1"], pair["set2"], pair["difference"]]
        table = visdiff.rank(hypotheses, [root / p for p in pair["set1_images"]], [root / p for p in pair["set2_images"]],
                             scorer=spec, device="cpu", precision=precision, full_decode=full_decode, use_cache=False,
                             show_progress=False)
        by_hypothesis = dict(zip(table["hypothesis"], table["auroc"]))
        rows.append([by_hypothesis[h] for h in hypotheses])
    return np.array(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devbench", type=Path, default=Path(__file__).parents[1] / ".." / "shared" / "data" / "devbench")
    parser.add_argument("--arch", default="ViT-S-32")
    parser.add_argument("--upscale", type=int, default=3, help="also measure images enlarged this many times (1: not)")
    args = parser.parse_args()
    pairs = [json.loads(line) for line in (args.devbench / "devbench.jsonl").read_text().splitlines() if line.strip()]
    with tempfile.TemporaryDirectory() as folder:
        spec = random_weights(args.arch, Path(folder))
        roots = {"as released": args.devbench}
        if args.upscale > 1:
            roots[f"enlarged x{args.upscale}"] = upscaled(args.devbench, args.upscale, Path(folder))
        for label, root in roots.items():
            found, seconds = {}, {}
            for name, (precision, full_decode) in SETTINGS.items():
                started = time.perf_counter()
                found[name] = aurocs(pairs, root, spec, precision, full_decode)
                seconds[name] = time.perf_counter() - started
            report(found, seconds, f"{len(pairs)} devbench pairs ({label}) x 3 hypotheses, {args.arch} with random "
                                   "weights, on CPU")


def report(found: dict[str, np.ndarray], seconds: dict[str, float], title: str) -> None:
    base = found[BASELINE]
    print(title)
    print(f"{'setting':<20} {'max |dAUROC|':>13} {'mean |dAUROC|':>14} {'top-1 changed':>14} {'seconds':>8}")
    for name, values in found.items():
        delta = np.abs(values - base)
        changed = int((values.argmax(axis=1) != base.argmax(axis=1)).sum())
        print(f"{name:<20} {delta.max():>13.4f} {delta.mean():>14.5f} {changed:>11} / {len(base)} {seconds[name]:>8.1f}",
              flush=True)


if __name__ == "__main__":
    main()
