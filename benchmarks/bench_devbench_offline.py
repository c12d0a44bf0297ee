"""Benchmark the offline profile (offline scorer + vocabulary proposer) on devbench and on
the development set built by ``scripts/build_devset.py``, with a two-halves protocol.

    .venv/bin/python scripts/build_devset.py                      # once: writes devset/
    .venv/bin/python benchmarks/bench_devbench_offline.py [--devbench ../shared/data/devbench]
        [--devset devset] [--skip-timing]

For every pair it runs :func:`visdiff.compare` and checks the top-1 and top-5 hypotheses of
the ranked table against the ground-truth name of set A (``set1``).

Two-halves protocol: the development set's pairs come in two halves (whole families: a pair
and its mirror, A and B swapped, are never split). Every choice in :data:`GRID` (the
vocabulary proposer's selection rules, its level step included, and the ramps of the
drawing and white-border properties) is made on one half by Acc@1 (then Acc@5; ties keep
the shipped values, listed first) and measured on the other, and the halves are swapped; the table prints, per kind,
the figures in sample (choice made on the same half) beside those out of sample (choice made
on the other half), each over all pairs of that kind, and those of the shipped values. The
choice is replayed on vocabulary scores computed once per pair, exactly as
:func:`visdiff.compare` selects and ranks (the script checks that they agree with compare's
top-5 lists for the shipped values). Devbench is reported through compare with the shipped
values: its transform thresholds were set looking at it, so it is in sample for them.
Level: how often the top-1 names the truth's own concept (same concept or paraphrase), a
more general one (a WordNet ancestor: "artifacts" for "tools") or a more specific one (a
descendant: "dwelling houses" for "buildings").

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

Devbench's ``classes.tsv`` is never read.
"""

from __future__ import annotations

import argparse
import functools
import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import visdiff
from visdiff.cache_root import CacheRoot
from visdiff.concepts import (
    DRAWING_RAMP,
    WHITE_BORDER_RAMP,
    Ramp,
    exact_index,
    load_concept_table,
    normalise_text,
    photo_properties,
)
from visdiff.embeddings.scoring import Scoring
from visdiff.embeddings.settings import EmbedSettings
from visdiff.sources import load_image_set
from visdiff.proposers import create_proposer
from visdiff.proposers.vocabulary import (
    AUROC_TOLERANCE,
    DIFF_RATIO,
    LEVEL_RATIO,
    REDUNDANCY,
    default_vocabulary,
    select_phrases,
)
from visdiff.ranking import rank_scores
from visdiff.scorers import create_scorer
from visdiff.scorers.offline import OfflineScorer

REPO = Path(__file__).resolve().parents[1]
PARAPHRASE_SIMILARITY = 0.75
# Choices tried on each half, the shipped ones first (ties keep the earlier): the vocabulary
# proposer's selection rules, and the ramps of the drawing and white-border properties.
RULES = [{"auroc_tolerance": t, "diff_ratio": r, "redundancy": c, "level_ratio": v}
         for v in (LEVEL_RATIO, None, 0.75, 0.5, 0.25) for c in (REDUNDANCY, 2.0, 0.6, 0.9)
         for t in (AUROC_TOLERANCE, 0.06, 0.0) for r in (DIFF_RATIO, 0.5, 0.9)]
RULES = [dict(rules) for rules in dict.fromkeys(tuple(r.items()) for r in RULES)]
RAMPS = [{"drawing": Ramp("flatness", z, o), "white_border": Ramp("white_border", wz, wo)}
         for z, o in ((DRAWING_RAMP.zero, DRAWING_RAMP.one), (0.1, 0.3), (0.2, 0.45), (0.2, 0.7))
         for wz, wo in ((WHITE_BORDER_RAMP.zero, WHITE_BORDER_RAMP.one), (0.1, 0.3), (0.3, 0.7))]
RAMPS = [dict(ramps) for ramps in dict.fromkeys(tuple(r.items()) for r in RAMPS)]
GRID = [(rules, ramps) for ramps in RAMPS for rules in RULES]


@dataclass
class Pair:
    id: str
    kind: str
    truth: str
    images_a: list[Path]
    images_b: list[Path]
    half: int = 0


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
        # The grid asks about the same few (hypothesis, truth) pairs many times.
        self.matches = functools.cache(self.matches)

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

    def level(self, hypothesis: str, truth: str) -> str:
        """'same' (the truth's concept or a paraphrase), 'general' (a WordNet concept over
        more classes than the truth's, containing them), 'specific' (over fewer, inside
        them) or 'other'."""
        ok, why = self.matches(hypothesis, truth)
        if ok and (why == "same concept" or why.startswith("MiniLM")):
            return "same"
        mine, theirs = _concept_of(hypothesis), _concept_of(truth)
        if mine is None or theirs is None or mine[0] != "class" or theirs[0] != "class":
            return "other"
        if mine[1] > theirs[1]:
            return "general"
        return "specific" if mine[1] < theirs[1] else "other"


# -- pairs ----------------------------------------------------------------------------------

def read_pairs(jsonl: Path) -> list[Pair]:
    """Pairs of a devbench-format JSONL file (image paths relative to its folder)."""
    pairs = []
    for line in jsonl.read_text().splitlines():
        record = json.loads(line)
        pairs.append(Pair(record["id"], record["kind"], record["set1"],
                          [jsonl.parent / p for p in record["set1_images"]],
                          [jsonl.parent / p for p in record["set2_images"]], record.get("half", 0)))
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


@dataclass
class Outcome:
    at1: bool
    at5: bool
    level: str
    top: list[str]
    why: str


def judge(top: list[str], truth: str, matcher: Matcher) -> Outcome:
    decisions = [matcher.matches(h, truth) for h in top]
    return Outcome(decisions[0][0], any(ok for ok, _ in decisions), matcher.level(top[0], truth), top, decisions[0][1])


def compare_pairs(pairs: list[Pair], scorer, matcher: Matcher, cache_dir: Path) -> dict[str, Outcome]:
    """{pair id: outcome} of :func:`visdiff.compare` with the offline profile as shipped."""
    proposer = create_proposer("vocabulary")
    outcomes = {}
    for pair in pairs:
        result = visdiff.compare(pair.images_a, pair.images_b, scorer=scorer, proposer=proposer,
                                 cache_dir=cache_dir, show_progress=False)
        outcomes[pair.id] = judge(result.table["hypothesis"].tolist()[:5], pair.truth, matcher)
    return outcomes


def vocabulary_scores(pairs: list[Pair], ramps: dict, cache_dir: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{pair id: (A, B) scores of every phrase of the default vocabulary}: what the proposer
    sees, with the offline scorer's properties built with ``ramps``."""
    scorer = OfflineScorer(cache=CacheRoot(cache_dir), properties=photo_properties(**ramps))
    scoring = Scoring(scorer, cache=CacheRoot(cache_dir), settings=EmbedSettings(show_progress=False))
    phrases = list(default_vocabulary().phrases)
    out = {}
    for pair in pairs:
        (a, _), (b, _) = scoring.embed_sets(load_image_set(pair.images_a), load_image_set(pair.images_b))
        out[pair.id] = tuple(scoring.score_embeddings([a, b], phrases))
    return out


def evaluate(pairs: list[Pair], scores: dict, rules: dict, matcher: Matcher) -> dict[str, Outcome]:
    """The proposer's selection with ``rules`` and the ranking, as :func:`visdiff.compare` runs
    them, on precomputed vocabulary scores (checked against compare in :func:`main`)."""
    vocabulary = default_vocabulary()
    outcomes = {}
    for pair in pairs:
        a, b = scores[pair.id]
        picks = select_phrases(a, b, vocabulary, **rules)
        table = rank_scores(a[:, picks], b[:, picks], [vocabulary.phrases[i] for i in picks])
        outcomes[pair.id] = judge(table["hypothesis"].tolist()[:5], pair.truth, matcher)
    return outcomes


def accuracy(outcomes: list[Outcome]) -> str:
    return f"{np.mean([o.at1 for o in outcomes]):.2f} / {np.mean([o.at5 for o in outcomes]):.2f}"


def describe(choice: tuple[dict, dict]) -> str:
    rules, ramps = choice
    return ", ".join([*(f"{k}={v}" for k, v in rules.items()),
                      *(f"{k}={r.zero}->{r.one}" for k, r in ramps.items())])


def choose(runs: list[dict[str, Outcome]], pairs: list[Pair]) -> int:
    """Index of the rules with the best Acc@1 (then Acc@5) over ``pairs``; ties keep the earliest."""
    keys = [(sum(run[p.id].at1 for p in pairs), sum(run[p.id].at5 for p in pairs)) for run in runs]
    return max(range(len(runs)), key=lambda i: (keys[i], -i))


def two_halves(pairs: list[Pair], runs: list[dict[str, Outcome]]) -> None:
    """Choices made on each half; per kind, Acc in sample beside out of sample."""
    halves = {h: [p for p in pairs if p.half == h] for h in (1, 2)}
    chosen = {h: choose(runs, halves[h]) for h in halves}
    for h, i in chosen.items():
        print(f"chosen on half {h} ({len(halves[h])} pairs): {describe(GRID[i])}")
    print(f"chosen on all {len(pairs)} pairs: {describe(GRID[choose(runs, pairs)])}")
    inside = {p.id: runs[chosen[p.half]][p.id] for p in pairs}
    outside = {p.id: runs[chosen[3 - p.half]][p.id] for p in pairs}
    print(f"\n{'kind':12s} {'pairs':>5s}  {'in sample Acc@1 / @5':>22s}  {'out of sample Acc@1 / @5':>26s}  "
          f"{'shipped':>18s}  top-1 level (out of sample): same/general/specific/other")
    for kind in [*sorted({p.kind for p in pairs}), "all"]:
        group = [p for p in pairs if kind in ("all", p.kind)]
        levels = [outside[p.id].level for p in group]
        counts = "/".join(str(levels.count(x)) for x in ("same", "general", "specific", "other"))
        print(f"{kind:12s} {len(group):5d}  {accuracy([inside[p.id] for p in group]):>22s}  "
              f"{accuracy([outside[p.id] for p in group]):>26s}  {accuracy([runs[0][p.id] for p in group]):>18s}  {counts}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devbench", type=Path, default=REPO.parent / "shared/data/devbench")
    parser.add_argument("--devset", type=Path, default=REPO / "devset")
    parser.add_argument("--cache-dir", type=Path, default=None, help="embedding cache kept between runs")
    parser.add_argument("--skip-timing", action="store_true")
    args = parser.parse_args()
    if not (args.devset / "devset.jsonl").is_file():
        raise SystemExit(f"no {args.devset / 'devset.jsonl'}: run scripts/build_devset.py first")

    with tempfile.TemporaryDirectory(prefix="visdiff-bench-") as tmp:
        cache_dir = args.cache_dir or Path(tmp) / "cache"
        devbench = read_pairs(args.devbench / "devbench.jsonl")
        devset = read_pairs(args.devset / "devset.jsonl")
        if not args.skip_timing:
            seconds = cold_timing(devbench[0], Path(tmp) / "timing-cache")
            print(f"cold run, {min(20, len(devbench[0].images_a))} + {min(20, len(devbench[0].images_b))} images "
                  f"({devbench[0].id}), fresh interpreter, empty cache, model load included: {seconds:.1f} s")

        scorer, matcher = create_scorer("offline", cache=CacheRoot(cache_dir)), Matcher()
        shipped = compare_pairs(devbench + devset, scorer, matcher, cache_dir)
        scores = {i: vocabulary_scores(devset, ramps, cache_dir) for i, ramps in enumerate(RAMPS)}
        runs = [evaluate(devset, scores[RAMPS.index(ramps)], rules, matcher) for rules, ramps in GRID]
        agree = sum(runs[0][p.id].top == shipped[p.id].top for p in devset)
        print(f"selection replayed on precomputed scores agrees with visdiff.compare on {agree}/{len(devset)} "
              "top-5 lists (shipped defaults)")
        for pair in devbench + devset:
            o = shipped[pair.id]
            print(f"{pair.id:26s} h{pair.half} truth={pair.truth!r:36s} top1={o.top[0]!r} ({o.why}, {o.level}) "
                  f"@1={int(o.at1)} @5={int(o.at5)} top5={o.top}")
        print("\ndevbench, shipped defaults (in sample for the transform thresholds):")
        for kind in sorted({p.kind for p in devbench}):
            group = [shipped[p.id] for p in devbench if p.kind == kind]
            print(f"  {kind:10s} pairs={len(group):2d} Acc@1 / Acc@5 = {accuracy(group)}")
        print("\ndevelopment set, two halves:")
        two_halves(devset, runs)


if __name__ == "__main__":
    main()
