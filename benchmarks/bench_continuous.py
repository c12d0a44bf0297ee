"""Benchmark ``--score-col`` (Spearman's rho over a value) against binning the value at its
median and comparing the halves, devbench only.

    .venv/bin/python benchmarks/bench_continuous.py [--devbench ../shared/data/devbench] [--seeds 2]

Images: every image of devbench's category pairs (the ground-truth groups ``set1``/``set2``:
"dogs", "fish"...). For each planted concept (a group with at least 10 images) and a second
group (the next one in file order), each image gets a value: 1 for the planted group, 0.5 for
the second, 0 otherwise, plus Gaussian noise of standard deviation ``sigma``. Both run the
offline profile (offline scorer, vocabulary proposer): ``visdiff.compare(images, score=values)``
against ``visdiff.compare(top half, bottom half)`` split at the median value. A run is right at
1 (at 5) when the first row (one of the first five; with ``score=``, of those more true of high
values) names the planted concept (the matcher of ``bench_devbench_offline.py``). Devbench's
``classes.tsv`` is never read.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

import visdiff
from bench_devbench_offline import Matcher, judge
from bench_rare import MIN_CONCEPT_IMAGES, category_groups
from visdiff.cache_root import CacheRoot
from visdiff.proposers import create_proposer
from visdiff.scorers import create_scorer

REPO = Path(__file__).resolve().parents[1]
SIGMAS = (0.25, 0.5, 1.0)
SECOND_VALUE = 0.5


def planted_values(images: list[Path], planted: set[Path], second: set[Path], sigma: float,
                   rng: np.random.Generator) -> np.ndarray:
    base = np.array([1.0 if p in planted else SECOND_VALUE if p in second else 0.0 for p in images])
    return base + rng.normal(0.0, sigma, len(images))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devbench", type=Path, default=REPO.parent / "shared" / "data" / "devbench")
    parser.add_argument("--seeds", type=int, default=2, help="noise seeds per concept and sigma")
    parser.add_argument("--cache-dir", type=Path, default=None, help="embedding cache kept between runs")
    args = parser.parse_args()
    groups = category_groups(args.devbench)
    names = list(groups)
    images = sorted({p for group in groups.values() for p in group})
    concepts = [name for name in names if len(groups[name]) >= MIN_CONCEPT_IMAGES]
    with tempfile.TemporaryDirectory() as tmp:
        cache_dir = args.cache_dir or Path(tmp) / "cache"
        scorer, proposer = create_scorer("offline", cache=CacheRoot(cache_dir)), create_proposer("vocabulary")
        matcher = Matcher()
        run = dict(scorer=scorer, proposer=proposer, cache_dir=cache_dir, show_progress=False)
        hits = {(mode, sigma): [] for mode in ("score", "median") for sigma in SIGMAS}
        for c, concept in enumerate(concepts):
            second = names[(names.index(concept) + 1) % len(names)]
            for sigma in SIGMAS:
                for seed in range(args.seeds):
                    values = planted_values(images, set(groups[concept]), set(groups[second]), sigma,
                                            np.random.default_rng([c, seed, round(sigma * 100)]))
                    by_value = visdiff.compare(images, score=values, **run).table
                    high = by_value[by_value["more_true_of"] == "high values"]["hypothesis"].tolist()
                    hits[("score", sigma)].append(judge(high[:5] or ["(none)"], concept, matcher))
                    above = values > np.median(values)
                    halves = visdiff.compare([p for p, up in zip(images, above) if up],
                                             [p for p, up in zip(images, above) if not up], **run).table
                    hits[("median", sigma)].append(judge(halves["hypothesis"].tolist()[:5], concept, matcher))
            print(f"{concept} (second: {second}): done", flush=True)
    print(f"\n{len(concepts)} planted concepts x {args.seeds} noise seeds; {len(images)} images; offline profile")
    print("| noise sd | --score-col Acc@1 | --score-col Acc@5 | median split Acc@1 | median split Acc@5 |")
    print("|---|---|---|---|---|")
    for sigma in SIGMAS:
        cells = [f"{np.mean([getattr(o, at) for o in hits[(mode, sigma)]]):.2f}"
                 for mode in ("score", "median") for at in ("at1", "at5")]
        print(f"| {sigma} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
