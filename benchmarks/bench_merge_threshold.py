"""Choose the near-duplicate merge threshold: how similar are paraphrases, how similar are
different ideas, with the scorers available here.

    .venv/bin/python benchmarks/bench_merge_threshold.py [--devbench ../shared/data/devbench]

Two measures of similarity between phrases p and q, for the offline scorer:

- text: cosine of the scorer's text embeddings (``Scoring.encode_texts``; for the offline
  scorer, its weights over ImageNet classes and photographic properties);
- scores: Pearson correlation of the two phrases' score columns over the images of one
  comparison (both sets of a devbench pair, about 40 images): what any scorer gives,
  pairwise ones included. Printed as the median over the 16 pairs (pairs where a column is
  constant are left out).

PARAPHRASES are pairs a person would call the same idea, DISTINCT pairs different ideas
(many of them related or seen together). For each threshold the table prints the share of
each merged (similarity >= threshold); the threshold should merge most paraphrases and no
distinct pair.

Then each devbench pair is compared with the offline profile's defaults (vocabulary proposer,
merging at the default threshold) and the near-duplicates merged are counted and listed.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

import visdiff
from visdiff.ranking import DEFAULT_MERGE_THRESHOLD
from visdiff.stats import score_correlation

PARAPHRASES = [
    ("dogs", "a dog"), ("dogs on grass", "a dog on the grass"), ("pet dogs", "dogs"), ("birds", "a bird"),
    ("photos of birds", "birds"), ("cars", "automobiles"), ("cars and trucks", "motor vehicles"),
    ("boats", "ships"), ("boats and ships", "watercraft"), ("black and white photos", "monochrome photos"),
    ("black and white photos", "grayscale images"), ("blurry photos", "out-of-focus photos"),
    ("dark photos", "underexposed photos"), ("upside-down photos", "images turned upside down"),
    ("musical instruments", "instruments for making music"), ("guitars", "a guitar"), ("fish", "fishes"),
    ("insects", "bugs"), ("spiders", "arachnids"), ("fruit", "fruits"), ("food (substance)", "food"),
    ("clothing", "garments"), ("clothing", "clothes"), ("big cats", "large wild cats"), ("snakes", "serpents"),
    ("hand tools", "tools"), ("monkeys and apes", "primates"), ("furniture", "pieces of furniture"),
]
DISTINCT = [
    ("dogs", "cats"), ("dogs", "birds"), ("dogs", "grass"), ("cars", "boats"), ("fish", "reptiles"),
    ("insects", "spiders"), ("musical instruments", "hand tools"), ("furniture", "clothing"),
    ("monkeys", "big cats"), ("fruit", "vegetables"), ("black and white photos", "blurry photos"),
    ("dark photos", "upside-down photos"), ("buildings", "natural landforms"), ("kimonos", "pajamas"),
    ("sandals", "shoe shops"), ("dogs", "mammals"), ("reptiles", "frogs"), ("indoor scenes", "furniture"),
    ("city scenes", "cars"), ("drawings", "photographs"), ("people", "clothing"), ("dogs", "wolves"),
    ("birds", "aquatic birds"), ("primates", "fruit"), ("water scenes", "fish"), ("snow scenes", "cars"),
]
THRESHOLDS = (0.7, 0.8, 0.85, 0.9, 0.95, 0.98)


def text_similarity(comparison: visdiff.Comparison, pairs) -> np.ndarray:
    phrases = sorted({p for pair in pairs for p in pair})
    rows = torch.nn.functional.normalize(comparison.stages.scoring.encode_texts(phrases).float(), dim=1)
    index = {p: i for i, p in enumerate(phrases)}
    return np.array([float(rows[index[p]] @ rows[index[q]]) for p, q in pairs])


def score_similarity(comparisons, pairs) -> np.ndarray:
    """Median over comparisons of each pair's score correlation (NaN where never defined)."""
    phrases = sorted({p for pair in pairs for p in pair})
    index = {p: i for i, p in enumerate(phrases)}
    per_comparison = []
    for comparison in comparisons:
        scores = torch.cat(comparison.scores(phrases)).cpu().numpy()
        correlation = score_correlation(scores)
        per_comparison.append([correlation[index[p], index[q]] for p, q in pairs])
    return np.nanmedian(np.array(per_comparison, dtype=float), axis=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devbench", type=Path, default=Path("../shared/data/devbench"))
    args = parser.parse_args()
    records = [json.loads(line) for line in (args.devbench / "devbench.jsonl").read_text().splitlines()]
    comparisons = [visdiff.Comparison([args.devbench / p for p in r["set1_images"]],
                                      [args.devbench / p for p in r["set2_images"]], profile="offline",
                                      show_progress=False) for r in records]
    measures = {
        "text": (text_similarity(comparisons[0], PARAPHRASES), text_similarity(comparisons[0], DISTINCT)),
        "scores": (score_similarity(comparisons, PARAPHRASES), score_similarity(comparisons, DISTINCT)),
    }
    for name, (same, different) in measures.items():
        print(f"\n{name} similarity (offline scorer)")
        for (p, q), s in sorted(zip(PARAPHRASES, same), key=lambda x: x[1]):
            print(f"  paraphrase {s:6.3f}  {p!r} / {q!r}")
        for (p, q), s in sorted(zip(DISTINCT, different), key=lambda x: -np.nan_to_num(x[1], nan=-1)):
            print(f"  distinct   {s:6.3f}  {p!r} / {q!r}")
        print("  threshold | paraphrases merged | distinct merged")
        for t in THRESHOLDS:
            print(f"  {t:9.2f} | {np.mean(np.nan_to_num(same, nan=-1) >= t):18.2f} | "
                  f"{np.mean(np.nan_to_num(different, nan=-1) >= t):15.2f}")
    print(f"\ndevbench, offline profile, merging at {DEFAULT_MERGE_THRESHOLD}")
    total = proposals = 0
    for record, comparison in zip(records, comparisons):
        result = comparison.compare()
        proposals += len(result.proposals)
        total += result.table.attrs["merge"]["merged"]
        for row in result.table[result.table["merged"].map(len) > 0].itertuples():
            print(f"  {record['id']}: {row.hypothesis!r} took {row.merged}")
    print(f"  {total} near-duplicates merged of {proposals} proposals over {len(records)} pairs")


if __name__ == "__main__":
    main()
