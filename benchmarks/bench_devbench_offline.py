"""Benchmark the offline profile (offline scorer + vocabulary proposer) on devbench and on
out-of-domain pairs built from Debian packages.

    .venv/bin/python benchmarks/bench_devbench_offline.py [--devbench ../shared/data/devbench]
        [--ood-images /usr/share] [--skip-ood] [--skip-timing]

For every pair it runs :func:`visdiff.compare` and checks the top-1 and top-5 hypotheses of
the ranked table against the ground-truth name of set A (``set1``). Prints Acc@1 / Acc@5
per kind (category, transform, and the out-of-domain kinds) and a cold-cache timing of one
20 + 20 pair in a fresh interpreter, model load included.

Matcher (:func:`matches`), a hypothesis is correct when any of these holds:

1. Same concept: hypothesis and truth (or one part of a truth "X and Y" / "X, Y") name the
   same WordNet concept or photographic property once both are looked up by exact name
   (plural or singular, "photos of" stripped), or concepts over the same ImageNet classes.
2. Common category: the truth has several parts and the hypothesis names their lowest
   common WordNet ancestor over ImageNet classes ("primates" for "monkeys and apes").
   Head noun: a truth part with a modifier that is no concept itself matches the concept
   of its head noun ("man-made structures" -> "structures"); class concepts only.
3. Paraphrase: all-MiniLM-L6-v2 cosine similarity of the two normalised texts >= 0.75
   ("greyscale photos" ~ "black and white photos"). The similarity is printed with each
   decision.

Out-of-domain pairs (not committed; written to a temporary folder): clipart from
``openclipart-png`` (public domain) grouped by the package's own folders, and photos from
``mate-backgrounds`` (GPL-2+) altered to greyscale, blurred, darkened or turned upside
down, and those photos
against clipart drawings (both ways). Install with
``apt-get install openclipart-png mate-backgrounds``. Devbench's ``classes.tsv`` is never read.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter, ImageOps

import visdiff
from visdiff.cache_root import CacheRoot
from visdiff.concepts import exact_index, load_concept_table, normalise_text
from visdiff.image_sets import to_rgb
from visdiff.proposers import create_proposer
from visdiff.scorers import create_scorer

REPO = Path(__file__).resolve().parents[1]
PARAPHRASE_SIMILARITY = 0.75
MAX_IMAGES = 20
CLIPART = Path("/usr/share/openclipart/png")
PHOTOS = Path("/usr/share/backgrounds/mate/nature")

# (id, kind, truth of A, truth of B, folders of A, folders of B) under CLIPART.
CLIPART_PAIRS = [
    ("ood-clip-birds-fish", "clipart", "birds", "fish", ["animals/birds"], ["animals/fish"]),
    ("ood-clip-fish-birds", "clipart", "fish", "birds", ["animals/fish"], ["animals/birds"]),
    ("ood-clip-insects-mammals", "clipart", "insects", "mammals", ["animals/bugs"], ["animals/mammals"]),
    ("ood-clip-fruit-vegetables", "clipart", "fruit", "vegetables", ["food/fruit"], ["food/vegetables"]),
    ("ood-clip-vegetables-fruit", "clipart", "vegetables", "fruit", ["food/vegetables"], ["food/fruit"]),
    ("ood-clip-flowers-trees", "clipart", "flowers", "trees", ["plants/flowers"], ["plants/trees"]),
    ("ood-clip-furniture-clothing", "clipart", "furniture", "clothing", ["buildings/furniture"], ["people/clothing"]),
    ("ood-clip-music-tools", "clipart", "musical instruments", "tools", ["recreation/music"], ["tools"]),
    ("ood-clip-houses-vehicles", "clipart", "houses", "vehicles", ["buildings/homes"], ["transportation"]),
]


@dataclass
class Pair:
    id: str
    kind: str
    truth: str
    images_a: list[Path]
    images_b: list[Path]


# -- matcher ------------------------------------------------------------------------------

def _concept_of(text: str) -> tuple[str, frozenset[int] | int] | None:
    """('class', its ImageNet class set) or ('property', index) for an exact name, else None."""
    found = exact_index().get(normalise_text(text))
    if found is None:
        return None
    kind, k = found
    return (kind, frozenset(load_concept_table().concepts[k].classes)) if kind == "class" else (kind, k)


def _lowest_common_concept(parts: list[str]) -> frozenset[int] | None:
    sets = [_concept_of(p) for p in parts]
    if any(s is None or s[0] != "class" for s in sets):
        return None
    union = frozenset().union(*(s[1] for s in sets))
    covering = [frozenset(c.classes) for c in load_concept_table().concepts if union <= set(c.classes)]
    return min(covering, key=len) if covering else None


class Matcher:
    """Decides whether a hypothesis states the ground truth (see the module docstring)."""

    def __init__(self) -> None:
        from visdiff.scorers.offline import load_sentence_model

        self.model = load_sentence_model("cpu")

    def similarity(self, a: str, b: str) -> float:
        emb = self.model.encode([normalise_text(a), normalise_text(b)], normalize_embeddings=True,
                                show_progress_bar=False)
        return float(emb[0] @ emb[1])

    def matches(self, hypothesis: str, truth: str) -> tuple[bool, str]:
        parts = [p.strip() for p in truth.replace(" and ", ",").split(",") if p.strip()]
        mine = _concept_of(hypothesis)
        if mine is not None:
            if any(_concept_of(t) == mine for t in [truth, *parts]):
                return True, "same concept"
            if len(parts) > 1 and mine[0] == "class" and mine[1] == _lowest_common_concept(parts):
                return True, "common category"
            heads = [p.split()[-1] for p in parts if len(p.split()) > 1 and _concept_of(p) is None]
            if mine[0] == "class" and any(_concept_of(h) == mine for h in heads):
                return True, "head noun"
        similarity = self.similarity(hypothesis, truth)
        return similarity >= PARAPHRASE_SIMILARITY, f"MiniLM {similarity:.2f}"


# -- pairs ----------------------------------------------------------------------------------

def devbench_pairs(root: Path) -> list[Pair]:
    pairs = []
    for line in (root / "devbench.jsonl").read_text().splitlines():
        record = json.loads(line)
        pairs.append(Pair(record["id"], record["kind"], record["set1"],
                          [root / p for p in record["set1_images"]], [root / p for p in record["set2_images"]]))
    return pairs


def _sample(folders: list[Path], rng: random.Random) -> list[Path]:
    files = sorted(f for folder in folders for f in folder.rglob("*.png"))
    # The package ships many drawings twice, in colour and as "_bw" line art; keep colour.
    files = [f for f in files if "_bw" not in f.stem]
    return sorted(rng.sample(files, min(MAX_IMAGES, len(files))))


def _save(images: list[Image.Image], folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, image in enumerate(images):
        image.thumbnail((320, 320))
        path = folder / f"{i:02d}.jpg"
        image.save(path, quality=90)
        paths.append(path)
    return paths


def ood_pairs(out: Path, seed: int = 0) -> list[Pair]:
    """Out-of-domain pairs written under ``out`` (skipped with a note if a package is missing)."""
    rng = random.Random(seed)
    pairs = []
    if CLIPART.is_dir():
        for pair_id, kind, truth, _, folders_a, folders_b in CLIPART_PAIRS:
            files_a = _sample([CLIPART / f for f in folders_a], rng)
            files_b = _sample([CLIPART / f for f in folders_b], rng)
            a = _save([to_rgb(Image.open(f)) for f in files_a], out / pair_id / "a")
            b = _save([to_rgb(Image.open(f)) for f in files_b], out / pair_id / "b")
            pairs.append(Pair(pair_id, kind, truth, a, b))
    else:
        print(f"# {CLIPART} missing (apt-get install openclipart-png): clipart pairs skipped")
    photos = sorted(PHOTOS.glob("*.jpg"))
    if len(photos) >= 8:
        half = len(photos) // 2
        originals = [to_rgb(Image.open(f)) for f in photos]
        for image in originals:
            image.thumbnail((640, 640))
        transforms = {
            "black and white photos": lambda im: ImageOps.grayscale(im).convert("RGB"),
            "blurry photos": lambda im: im.filter(ImageFilter.GaussianBlur(max(im.size) / 100)),
            "dark, underexposed photos": lambda im: ImageEnhance.Brightness(im).enhance(0.3),
            "upside-down photos": lambda im: im.rotate(180),
        }
        for n, (truth, transform) in enumerate(transforms.items()):
            # Each photo lands in A (altered) or B (as is), alternating halves per transform.
            order = originals[half:] + originals[:half] if n % 2 else originals
            a = _save([transform(im.copy()) for im in order[:half]], out / f"ood-photo-{n}" / "a")
            b = _save([im.copy() for im in order[half:]], out / f"ood-photo-{n}" / "b")
            pairs.append(Pair(f"ood-photo-{truth.split()[0].strip(',')}", "photo transform", truth, a, b))
        if CLIPART.is_dir():
            # Drawings vs photos both ways: clipart from every folder against the photos.
            drawings = [to_rgb(Image.open(f)) for f in _sample([CLIPART], rng)[:len(photos)]]
            a = _save([im.copy() for im in drawings], out / "ood-drawings" / "a")
            b = _save([im.copy() for im in originals], out / "ood-drawings" / "b")
            pairs.append(Pair("ood-drawings-photos", "drawing vs photo", "drawings", a, b))
            pairs.append(Pair("ood-photos-drawings", "drawing vs photo", "photos", b, a))
    else:
        print(f"# {PHOTOS} missing (apt-get install mate-backgrounds): photo pairs skipped")
    return pairs


# -- runs -------------------------------------------------------------------------------------

def cold_timing(pair: Pair, cache_dir: Path) -> float:
    """Seconds for one compare in a fresh interpreter with an empty cache, imports included."""
    code = (
        "import sys, time; start = time.perf_counter(); import visdiff; "
        "visdiff.compare(sys.argv[1].split('|'), sys.argv[2].split('|'), cache_dir=sys.argv[3], show_progress=False); "
        "print(time.perf_counter() - start)"
    )
    args = ["|".join(map(str, pair.images_a[:20])), "|".join(map(str, pair.images_b[:20])), str(cache_dir)]
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devbench", type=Path, default=REPO.parent / "shared/data/devbench")
    parser.add_argument("--skip-ood", action="store_true")
    parser.add_argument("--skip-timing", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="visdiff-bench-") as tmp:
        tmp = Path(tmp)
        pairs = devbench_pairs(args.devbench)
        if not args.skip_ood:
            pairs += ood_pairs(tmp / "ood")
        if not args.skip_timing:
            seconds = cold_timing(pairs[0], tmp / "timing-cache")
            print(f"cold run, {min(20, len(pairs[0].images_a))} + {min(20, len(pairs[0].images_b))} images "
                  f"({pairs[0].id}), fresh interpreter, empty cache, model load included: {seconds:.1f} s")

        scorer = create_scorer("offline", cache=CacheRoot(tmp / "cache"))
        proposer, matcher = create_proposer("vocabulary"), Matcher()
        hits: dict[str, list[tuple[bool, bool]]] = {}
        for pair in pairs:
            start = time.perf_counter()
            result = visdiff.compare(pair.images_a, pair.images_b, scorer=scorer, proposer=proposer,
                                     cache_dir=tmp / "cache", show_progress=False)
            top = result.table["hypothesis"].tolist()[:5]
            decisions = [matcher.matches(h, pair.truth) for h in top]
            at1, at5 = decisions[0][0], any(ok for ok, _ in decisions)
            hits.setdefault(pair.kind, []).append((at1, at5))
            print(f"{pair.id:28s} truth={pair.truth!r:40s} top1={top[0]!r} ({decisions[0][1]}) "
                  f"@1={int(at1)} @5={int(at5)} top5={top} [{time.perf_counter() - start:.1f} s]")
        print()
        for kind, rows in hits.items():
            a1, a5 = np.mean([r[0] for r in rows]), np.mean([r[1] for r in rows])
            print(f"{kind:16s} pairs={len(rows):2d} Acc@1={a1:.2f} Acc@5={a5:.2f}")


if __name__ == "__main__":
    main()
