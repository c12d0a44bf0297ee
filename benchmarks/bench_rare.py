"""Benchmark ``--rare`` against the default ranking on rare planted differences, devbench only.

    .venv/bin/python benchmarks/bench_rare.py [--devbench ../shared/data/devbench] [--splits 3]

Concepts: the ground-truth groups of devbench's category pairs (``set1``/``set2``: "dogs",
"fish"...) with at least 10 images. For each concept and split seed, the pool is every image
of the other category groups; B is 150 of them and A 100 others (disjoint, drawn at random),
and then 10%, 5%, 2% or 1% of A (10, 5, 2, 1 images) is replaced by images of the concept.
Both rankings run the offline profile (offline scorer, vocabulary proposer) through
:func:`visdiff.compare`; ``--rare 0.05`` shows the proposer the A images least like B and ranks
by the tail test. A run is right at 1 (at 5) when the first row (one of the first five) names
the concept (the matcher of ``bench_devbench_offline.py``); "significant": a row naming it among
the first five is flagged (q < 0.05). It also counts the planted images among those the
proposer was shown, and among as many chosen by the scorer's raw image embedding. Null splits: the same A and B
with nothing planted; the false-positive rate is the share of null splits whose ranking has
any significant row (q < 0.05), and the share of all rows flagged. Devbench's
``classes.tsv`` is never read.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

import visdiff
from bench_devbench_offline import Matcher, judge
from visdiff.cache_root import CacheRoot
from visdiff.outliers import least_like
from visdiff.proposers import create_proposer
from visdiff.scorers import create_scorer

REPO = Path(__file__).resolve().parents[1]
N_A, N_B = 100, 150
FRACTIONS = (0.10, 0.05, 0.02, 0.01)
RARE = 0.05
ALPHA = 0.05
MIN_CONCEPT_IMAGES = 10


def category_groups(devbench: Path) -> dict[str, list[Path]]:
    """{ground-truth name: its images} of the category pairs' sets (a group named in two pairs
    gets the images of both)."""
    groups: dict[str, list[Path]] = {}
    for line in (devbench / "devbench.jsonl").read_text().splitlines():
        record = json.loads(line)
        if record["kind"] != "category":
            continue
        for side in ("1", "2"):
            images = groups.setdefault(record[f"set{side}"], [])
            images += [devbench / p for p in record[f"set{side}_images"] if devbench / p not in images]
    return groups


def split(pool: list[Path], planted: list[Path], fraction: float, rng: np.random.Generator) -> tuple[list, list]:
    """A (N_A images, ``fraction`` of them from ``planted``) and B (N_B images), disjoint."""
    order = rng.permutation(len(pool))
    b = [pool[i] for i in order[:N_B]]
    a = [pool[i] for i in order[N_B:N_B + N_A]]
    k = round(fraction * N_A)
    if k:
        a[:k] = [planted[i] for i in rng.choice(len(planted), size=k, replace=False)]
        a = [a[i] for i in rng.permutation(N_A)]
    return a, b


def shown_recall(comparison, result, planted: list[Path]) -> tuple[int, int, int]:
    """Planted images of A among those the proposer was shown, among as many images of A least
    like B by the raw image embedding, and in A."""
    planted_keys = {item.key for item in comparison.set_a.items if item.path in set(planted)}
    shown = result.config["rare"]["shown_a"]
    by_embedding = least_like(comparison.embeddings("a"), comparison.embeddings("b"), len(shown))
    return (len(planted_keys & set(shown)),
            len(planted_keys & {comparison.set_a.items[i].key for i in by_embedding}), len(planted_keys))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devbench", type=Path, default=REPO.parent / "shared" / "data" / "devbench")
    parser.add_argument("--splits", type=int, default=3, help="split seeds per concept and fraction")
    parser.add_argument("--cache-dir", type=Path, default=None, help="embedding cache kept between runs")
    args = parser.parse_args()
    everything = category_groups(args.devbench)
    groups = {name: images for name, images in everything.items() if len(images) >= MIN_CONCEPT_IMAGES}
    with tempfile.TemporaryDirectory() as tmp:
        cache_dir = args.cache_dir or Path(tmp) / "cache"
        scorer, proposer = create_scorer("offline", cache=CacheRoot(cache_dir)), create_proposer("vocabulary")
        matcher = Matcher()
        modes = {"default": {}, f"--rare {RARE}": {"rare": RARE}}
        hits = {(mode, f): [] for mode in modes for f in FRACTIONS}
        null = {mode: {"any": [], "rows": []} for mode in modes}
        recall = {f: [] for f in FRACTIONS}
        for c, (concept, planted) in enumerate(groups.items()):
            pool = sorted({p for name, images in everything.items() if name != concept for p in images}
                          - set(planted))
            for seed in range(args.splits):
                for fraction in (0.0, *FRACTIONS):
                    a, b = split(pool, planted, fraction, np.random.default_rng([c, seed, round(fraction * 100)]))
                    for mode, extra in modes.items():
                        comparison = visdiff.Comparison(a, b, scorer=scorer, proposer=proposer, cache_dir=cache_dir,
                                                        show_progress=False, alpha=ALPHA, **extra)
                        result = comparison.compare()
                        flag = result.table["significant_tail" if extra else "significant"]  # the test each mode ranks by
                        if extra and fraction:
                            recall[fraction].append(shown_recall(comparison, result, planted))
                        if fraction == 0.0:
                            null[mode]["any"].append(bool(flag.any()))
                            null[mode]["rows"] += flag.tolist()
                        else:
                            top = result.table.head(5)
                            outcome = judge(top["hypothesis"].tolist(), concept, matcher)
                            # Power: a row naming the concept among the first five is also significant.
                            flagged = any(matcher.matches(h, concept)[0] and sig
                                          for h, sig in zip(top["hypothesis"], flag.head(5)))
                            hits[(mode, fraction)].append((outcome.at1, outcome.at5, flagged))
            print(f"{concept}: done", flush=True)
    print(f"\n{len(groups)} planted concepts x {args.splits} splits; A {N_A} images, B {N_B}; offline profile")
    print("| share of A planted | " + " | ".join(f"{mode} Acc@1 | Acc@5 | significant" for mode in modes) + " |")
    print("|---|" + "---|---|---|" * len(modes))
    for fraction in FRACTIONS:
        cells = []
        for mode in modes:
            found = np.array(hits[(mode, fraction)])
            cells += [f"{found[:, k].mean():.2f}" for k in range(3)]
        print(f"| {fraction:.0%} | " + " | ".join(cells) + " |")
    print("\nplanted images among those the proposer was shown (concept profiles, as --rare does), and among as "
          "many least like B by the scorer's own image embedding:")
    for fraction in FRACTIONS:
        found = np.array(recall[fraction]).sum(axis=0)
        print(f"  {fraction:.0%}: concept profiles {found[0]} of {found[2]}, image embedding {found[1]} of {found[2]}")
    for mode in modes:
        print(f"null splits, {mode}: any row significant in {np.mean(null[mode]['any']):.3f} of "
              f"{len(null[mode]['any'])} rankings; rows flagged {np.mean(null[mode]['rows']):.3f} of "
              f"{len(null[mode]['rows'])} (alpha {ALPHA})")


if __name__ == "__main__":
    main()
