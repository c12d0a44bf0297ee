"""``vocabulary`` proposer: no LLM; score a fixed vocabulary of descriptions on both sets and
propose those that separate A from B best, at the most specific level that still covers A.

The default vocabulary is every WordNet concept over the ImageNet-1k classes ("dogs",
"musical instruments", "structures", ...) plus the photographic properties of
:mod:`visdiff.concepts` ("black and white photos", "blurry photos", ...). Spec
``vocabulary:/path/to/words.txt`` uses one phrase per line instead (blank lines and lines
starting with ``#`` are skipped); phrases that name a WordNet concept keep its place in the
hierarchy. Any scorer works (the offline scorer or a CLIP model).

Selection, one proposal at a time:

1. Candidates are phrases with AUROC(A over B) > 0.5 and a higher mean on A, except those
   redundant with a phrase already proposed: its WordNet ancestors and descendants, and
   phrases whose scores over the images of A and B correlate with its scores at least
   ``redundancy`` (Pearson). A scene concept counts as above its members (and so as
   related to them and to their ancestors and descendants): "people" and "clothing".
   "placental mammals" and "Rottweilers" say nothing that "dogs" did not, "dwelling
   houses" fires on the same images as "buildings", and proposing them would let the
   ranker's AUROC order undo the choice of level.
2. The *tier* is every candidate whose AUROC is within ``auroc_tolerance`` of the best
   candidate and whose mean score difference (mean A - mean B) is at least ``diff_ratio``
   times the largest in that group: the descriptions that separate the sets about as well
   as the best one does, by rank and by how much of A they cover.
3. From the tier the most specific phrase wins (fewest ImageNet classes beneath it; a
   photographic property or a free phrase counts as one, a scene concept ("indoor scenes",
   "people") as its broadest member; then the deeper WordNet synset), then the larger
   difference.
4. Level (off unless ``level_ratio`` is set): among the candidates beneath that pick
   (related to it, over fewer classes) whose AUROC is within ``auroc_tolerance`` of the
   pick's and whose difference is at least ``level_ratio`` times the pick's, the most
   familiar name wins (``Concept.familiarity``: how often WordNet's tagged corpus uses the
   word in this sense), the pick on ties: "buildings" (50) under "artifacts" (1) when it
   separates about as well. Only downwards: word frequency would name "devices" (36)
   above "musical instruments" (1) and "containers" above "motor vehicles" (WordNet files
   cars under containers), which lost devbench pairs when tried.

So with dogs against birds, "dogs", "canines", "carnivores" and "placental mammals" all tie
(AUROC 1, similar coverage) and "dogs" is the most specific; "Rottweilers" separates worse
(it covers one breed of A) and never enters the tier.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from visdiff import stats
from visdiff.concepts import PHOTO_PROPERTIES, load_concept_table, normalise_text
from visdiff.errors import InputError
from visdiff.proposers import ProposalContext

# Selection rules (see the module docstring), chosen on the development set of
# scripts/build_devset.py by benchmarks/bench_devbench_offline.py (one half, then the other).
AUROC_TOLERANCE = 0.03
DIFF_RATIO = 0.75
REDUNDANCY = 2.0
LEVEL_RATIO: float | None = None


@dataclass(frozen=True)
class Vocabulary:
    """Phrases with what the selection needs: ``generality[i]`` (classes beneath phrase i,
    1 for a property or free phrase), ``depth[i]`` (WordNet depth, 0 if none; breaks ties
    between synsets over the same classes: "fish" over "aquatic vertebrates"),
    ``related[i]`` (indices of phrases above or below it in WordNet) and ``familiarity[i]``
    (:attr:`visdiff.concepts.Concept.familiarity`, 0 for a property or free phrase)."""

    phrases: tuple[str, ...]
    generality: tuple[int, ...]
    depth: tuple[int, ...]
    related: tuple[frozenset[int], ...]
    familiarity: tuple[int, ...]


def default_vocabulary() -> Vocabulary:
    """Every WordNet concept over the ImageNet classes, then the photographic properties."""
    table = load_concept_table()
    phrases = [c.phrase for c in table.concepts] + [p.phrase for p in PHOTO_PROPERTIES]
    # A scene concept ("people": garments, footwear, divers...) names a whole no more general
    # than its broadest member.
    generality = [max((len(table.concepts[m].classes) for m in c.members), default=len(c.classes))
                  for c in table.concepts]
    generality += [1] * len(PHOTO_PROPERTIES)
    depth = [c.depth for c in table.concepts] + [0] * len(PHOTO_PROPERTIES)
    familiarity = [c.familiarity for c in table.concepts] + [0] * len(PHOTO_PROPERTIES)
    return Vocabulary(tuple(phrases), tuple(generality), tuple(depth),
                      _relations(list(range(len(table.concepts))), len(phrases)), tuple(familiarity))


def vocabulary_from_phrases(phrases: list[str]) -> Vocabulary:
    """A custom vocabulary; phrases naming a WordNet concept keep its hierarchy."""
    table = load_concept_table()
    by_name: dict[str, int] = {}
    for k, concept in enumerate(table.concepts):
        for alias in (concept.phrase, *concept.aliases):
            by_name.setdefault(normalise_text(alias), k)
    concept_of = [by_name.get(normalise_text(p)) for p in phrases]
    generality = tuple(1 if k is None else len(table.concepts[k].classes) for k in concept_of)
    depth = tuple(0 if k is None else table.concepts[k].depth for k in concept_of)
    familiarity = tuple(0 if k is None else table.concepts[k].familiarity for k in concept_of)
    return Vocabulary(tuple(phrases), generality, depth, _relations(concept_of, len(phrases)), familiarity)


def _relations(concept_of: list[int | None], n_phrases: int) -> tuple[frozenset[int], ...]:
    """For each phrase, the phrases whose concepts are its WordNet ancestors or descendants.

    A scene concept ("people", "water scenes") stands above its members: it is related to
    each member and to the members' own ancestors and descendants, so that "people" and
    "clothing" (above its member "garments"), or "water scenes" and its member "shores",
    are never proposed side by side: the ranker's AUROC order would otherwise choose the
    level, not the selection.
    """
    ancestors = _ancestors_with_scenes()
    phrases_of: dict[int, list[int]] = {}
    for i, k in enumerate(concept_of):
        if k is not None:
            phrases_of.setdefault(k, []).append(i)
    related: list[set[int]] = [set() for _ in range(n_phrases)]
    for i, k in enumerate(concept_of):
        if k is None:
            continue
        for above in ancestors[k]:
            for j in phrases_of.get(above, ()):
                related[i].add(j)
                related[j].add(i)
    return tuple(frozenset(r) for r in related)


def _ancestors_with_scenes() -> tuple[frozenset[int], ...]:
    """WordNet ancestors of each concept, where a scene concept counts as an ancestor of
    its members and of everything at or beneath them, and the members' ancestors count as
    the scene concept's ancestors."""
    table = load_concept_table()
    above = [set(a) for a in table.ancestors]
    for s, scene in enumerate(table.concepts):
        for member in scene.members:
            above[s] |= table.ancestors[member]
            for k in range(len(table.concepts)):
                if k == member or member in table.ancestors[k]:
                    above[k].add(s)
    return tuple(frozenset(a) for a in above)


def read_vocabulary_file(path: Path) -> list[str]:
    if not path.is_file():
        raise InputError(f"vocabulary file {str(path)!r} does not exist")
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read vocabulary file {str(path)!r}: {e}") from e
    phrases = list(dict.fromkeys(" ".join(line.split()) for line in lines
                                 if line.strip() and not line.lstrip().startswith("#")))
    if not phrases:
        raise InputError(f"vocabulary file {str(path)!r} has no phrases")
    return phrases


def select_phrases(
    scores_a: np.ndarray,
    scores_b: np.ndarray,
    vocabulary: Vocabulary,
    *,
    max_proposals: int = 10,
    auroc_tolerance: float = AUROC_TOLERANCE,
    diff_ratio: float = DIFF_RATIO,
    redundancy: float = REDUNDANCY,
    level_ratio: float | None = LEVEL_RATIO,
) -> list[int]:
    """Indices of the phrases to propose, best first (see the module docstring).

    Parameters
    ----------
    scores_a, scores_b : ndarray of shape (n_a, m) and (n_b, m)
        Scores of every image for each of the m vocabulary phrases.
    vocabulary : Vocabulary
        The m phrases with their generality and WordNet relations.
    max_proposals : int
    auroc_tolerance, diff_ratio : float
        Tier bounds: AUROC within ``auroc_tolerance`` of the best, mean difference at
        least ``diff_ratio`` times the tier's largest.
    redundancy : float
        Phrases whose scores correlate at least this much with a proposed phrase's are not
        proposed after it (above 1: only WordNet relations count).
    level_ratio : float or None
        A phrase beneath the pick with at least this share of its difference (and AUROC
        within ``auroc_tolerance`` of it) may replace it by a more familiar name; None: never.
    """
    a, b = stats.check_scores(scores_a, scores_b)
    auroc = stats.auroc_score(a, b)
    diff = a.mean(axis=0) - b.mean(axis=0)
    candidates = set(np.flatnonzero((auroc > 0.5) & (diff > 0)).tolist())
    if not candidates:
        # Nothing is more true of A: still answer, with the least bad phrases.
        return np.argsort(-auroc, kind="stable")[:max_proposals].tolist()
    chosen: list[int] = []
    blocked: set[int] = set()
    generality, depth = np.asarray(vocabulary.generality), np.asarray(vocabulary.depth)
    familiarity = np.asarray(vocabulary.familiarity)
    both = np.concatenate([a, b])
    centred = both - both.mean(axis=0)
    norms = np.linalg.norm(centred, axis=0)
    while len(chosen) < max_proposals:
        candidates -= blocked
        if not candidates:
            break
        pool = np.array(sorted(candidates))
        tier = pool[auroc[pool] >= auroc[pool].max() - auroc_tolerance]
        tier = tier[diff[tier] >= diff_ratio * diff[tier].max()]
        pick = int(min(tier, key=lambda i: (generality[i], -depth[i], -diff[i], i)))
        if level_ratio is not None:
            levels = [j for j in vocabulary.related[pick] & candidates
                      if generality[j] < generality[pick]
                      and auroc[j] >= auroc[pick] - auroc_tolerance and diff[j] >= level_ratio * diff[pick]]
            pick = max([pick, *sorted(levels)], key=lambda j: familiarity[j])  # the first on ties: the pick
        chosen.append(pick)
        candidates.discard(pick)
        blocked |= vocabulary.related[pick]
        if redundancy <= 1.0:
            # Constant columns (norm 0) correlate with nothing.
            correlation = centred.T @ centred[:, pick] / np.maximum(norms * norms[pick], 1e-12)
            blocked |= set(np.flatnonzero(correlation >= redundancy).tolist())
    return chosen


class VocabularyProposer:
    """Scores a vocabulary with the pipeline's scorer and proposes the best separators."""

    backend = "vocabulary"

    def __init__(self, vocabulary: Vocabulary, *, spec: str, max_proposals: int = 10,
                 auroc_tolerance: float = AUROC_TOLERANCE, diff_ratio: float = DIFF_RATIO,
                 redundancy: float = REDUNDANCY, level_ratio: float | None = LEVEL_RATIO) -> None:
        if max_proposals < 1:
            raise ValueError(f"max_proposals must be at least 1, got {max_proposals}")
        self.vocabulary = vocabulary
        self.spec = spec
        self.max_proposals = max_proposals
        self.auroc_tolerance = auroc_tolerance
        self.diff_ratio = diff_ratio
        self.redundancy = redundancy
        self.level_ratio = level_ratio

    def propose(self, context: ProposalContext) -> list[str]:
        phrases = list(self.vocabulary.phrases)
        scores_a = context.scoring.score(context.set_a, phrases)
        scores_b = context.scoring.score(context.set_b, phrases)
        picks = select_phrases(scores_a, scores_b, self.vocabulary, max_proposals=self.max_proposals,
                               auroc_tolerance=self.auroc_tolerance, diff_ratio=self.diff_ratio,
                               redundancy=self.redundancy, level_ratio=self.level_ratio)
        return [phrases[i] for i in picks]

    def describe(self) -> dict:
        return {"spec": self.spec, "phrases": len(self.vocabulary.phrases), "max_proposals": self.max_proposals,
                "auroc_tolerance": self.auroc_tolerance, "diff_ratio": self.diff_ratio,
                "redundancy": self.redundancy, "level_ratio": self.level_ratio}


def _create_vocabulary(model: str, **options) -> VocabularyProposer:
    if model:
        vocabulary = vocabulary_from_phrases(read_vocabulary_file(Path(model).expanduser()))
        return VocabularyProposer(vocabulary, spec=f"vocabulary:{model}", **options)
    return VocabularyProposer(default_vocabulary(), spec="vocabulary", **options)
