"""Refinement (``--refine N``): after the first ranking, the chat model is shown what the best
hypotheses miss and asked for sharper or missing ones, which are ranked with the rest.

Each round, per direction (A over B; with ``both_directions`` also B over A, sets swapped):

1. the :data:`TOP_HYPOTHESES` best phrases with their AUROC;
2. the images of the described set that none of them explains: an image is explained by a
   phrase when it scores above the other set's median for it (more than half of the other
   set's images score lower), so an unexplained image is at or below that median for every
   top phrase; least explained first;
3. the other set's images that score like the described set: above the described set's
   median for some top phrase; most alike first.

Up to ``samples_per_set`` of each are captioned (the run's captioning stage, cached; both
sets' images in one captioning call, so a chat captioner asks them concurrently) and shown
with the prompt set's ``refine`` template. The new phrases are ranked with the rest; rounds
stop after ``refine``, or earlier when the best AUROC does not improve, when the model gives
no new phrase, or with nothing to improve or show (best AUROC 1, or every image explained
and no look-alike).
Every round is recorded in the run's ``proposal_rounds`` (``kind: "refine"``) with the
prompt, answer, new phrases, best AUROC before and after, and its LLM calls (one request, two
when the first answer is unusable).

A round whose LLM request fails, or whose answer holds no usable list even when asked again
(an error in a proposal round too), stops refinement: the phrases found before it are kept,
and :class:`RefinementStop` says which round failed and why. The comparison ranks what it has
and raises :class:`RefinementFailed` with that result, so a failed round is never silent and
never costs the ranking that finished before it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Protocol

import pandas as pd
import torch

from visdiff.errors import ServiceError
from visdiff.proposers.chat import sampled_images
from visdiff.ranking import dedupe_phrases, rank_scores

if TYPE_CHECKING:
    from visdiff.image_sets import ImageSet
    from visdiff.options import RunOptions
    from visdiff.result import CompareResult
    from visdiff.stages import RunStages

log = logging.getLogger(__name__)

TOP_HYPOTHESES = 5


class Comparison(Protocol):
    """What refinement reads of the :class:`visdiff.comparison.Comparison` that calls it
    (named here, not imported: the comparison imports this module)."""

    stages: RunStages
    set_a: ImageSet
    set_b: ImageSet

    @property
    def options(self) -> RunOptions: ...

    def scores(self, hypotheses: list[str]) -> tuple[torch.Tensor, torch.Tensor]: ...


def fraction_below(reference: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """(n_values, m): for each column, the fraction of ``reference``'s (n_ref, m) scores below
    each of ``values``' scores, ties counted half (an image's share of the AUROC)."""
    ordered = reference.T.contiguous().sort(dim=1).values
    queries = values.T.contiguous()
    below = torch.searchsorted(ordered, queries, right=False)
    at_or_below = torch.searchsorted(ordered, queries, right=True)
    return ((below + at_or_below).float() / (2 * reference.shape[0])).T


@dataclass(frozen=True)
class Evidence:
    """Positions of the described set's unexplained images (least explained first) and of the
    other set's look-alikes (most alike first)."""

    unexplained: list[int]
    look_alikes: list[int]

    def __bool__(self) -> bool:
        return bool(self.unexplained or self.look_alikes)


def find_evidence(scores_over: torch.Tensor, scores_other: torch.Tensor, *, k: int) -> Evidence:
    """What the phrases (columns) miss: at most ``k`` images of each set (see module doc)."""
    explained = fraction_below(scores_other, scores_over).max(dim=1).values
    alike = fraction_below(scores_over, scores_other).max(dim=1).values
    unexplained = torch.argsort(explained, stable=True)
    look_alikes = torch.argsort(alike, descending=True, stable=True)
    return Evidence(unexplained[explained[unexplained] <= 0.5][:k].tolist(),
                    look_alikes[alike[look_alikes] > 0.5][:k].tolist())


@dataclass(frozen=True)
class RefinementStop:
    """Refinement round ``round`` (1-based) of ``direction`` ("A" or "B") failed for ``reason``
    (the service's error); no later round was asked."""

    direction: str
    round: int
    reason: str

    def message(self) -> str:
        return f"refinement round {self.round} (more true of {self.direction}) failed: {self.reason}"

    def record(self) -> dict:
        """What results record (``config["refine_stopped"]``)."""
        return {"direction": self.direction, "round": self.round, "reason": self.reason}


class RefinementFailed(ServiceError):
    """A refinement round failed; ``result`` is the ranking of what was proposed before it
    (``result.config["refine_stopped"]`` records the round and reason)."""

    def __init__(self, stop: RefinementStop, result: CompareResult) -> None:
        super().__init__(stop.message())
        self.stop, self.result = stop, result


def refine_proposals(comparison: Comparison,
                     proposals: dict[str, list[str]]) -> tuple[dict[str, list[str]], RefinementStop | None]:
    """``proposals`` (phrases per direction, "A" and maybe "B") with each direction's
    refinement phrases appended after its own, and the failed round that stopped refinement
    (None when none failed): the directions after it keep their proposals unrefined."""
    refined = dict(proposals)
    with comparison.stages.timings.stage("refine"):
        for direction, phrases in proposals.items():
            refined[direction], stop = _refine_direction(comparison, direction, phrases)
            if stop is not None:
                return refined, stop
    return refined, None


def _ranked(comparison: Comparison, phrases: list[str], over_a: bool) -> tuple[tuple[torch.Tensor, torch.Tensor], pd.DataFrame]:
    """Scores (described set first) and the ranked table of ``phrases`` for one direction."""
    scores_a, scores_b = comparison.scores(phrases)
    scores = (scores_a, scores_b) if over_a else (scores_b, scores_a)
    return scores, rank_scores(*scores, phrases, alpha=comparison.options.alpha)


def _captions(captioning, *shown: ImageSet) -> list[dict[str, str]]:
    """Captions of each set's ``shown`` images, in their order (an image the captioner could
    not describe is left out), asked in one captioning call: a chat captioner sends the
    requests of every set concurrently through its pool."""
    items = tuple(item for images in shown for item in images.items)
    captions = captioning.caption(replace(shown[0], items=items, skipped=())) if items else {}
    return [{key: captions[key] for key in images.keys if key in captions} for images in shown]


def _refine_direction(comparison: Comparison, direction: str,
                      phrases: list[str]) -> tuple[list[str], RefinementStop | None]:
    """``phrases`` with the new ones of each round, and the round that failed (None if none)."""
    stages, options = comparison.stages, comparison.options
    over_a = direction == "A"
    described, other = (comparison.set_a, comparison.set_b) if over_a else (comparison.set_b, comparison.set_a)
    phrases = list(phrases)
    scores, table = _ranked(comparison, phrases, over_a)
    for index in range(options.refine):
        best_before = float(table["auroc"].iloc[0])
        if best_before >= 1.0:
            break  # nothing left to improve
        top = table.head(TOP_HYPOTHESES)
        columns = [phrases.index(h) for h in top["hypothesis"]]
        evidence = find_evidence(scores[0][:, columns], scores[1][:, columns], k=options.samples_per_set)
        if not evidence:
            log.info("refinement of %s stops: every image is explained and none of the other set scores alike",
                     direction)
            break
        shown_over, shown_other = described.subset(evidence.unexplained), other.subset(evidence.look_alikes)
        captions_a, captions_b = _captions(stages.captioning, shown_over, shown_other)
        try:
            asked = stages.proposer.refine(hypotheses=list(zip(top["hypothesis"], top["auroc"].astype(float))),
                                           captions_a=captions_a, captions_b=captions_b,
                                           seed=options.seed, round_index=index)
        except ServiceError as error:
            return phrases, RefinementStop(direction, index + 1, str(error))
        # ``phrases`` are de-duplicated already: what dedupe keeps after them is new.
        new = dedupe_phrases([*phrases, *asked["requests"][-1]["phrases"]])[len(phrases):]
        if new:
            phrases += new
            scores, table = _ranked(comparison, phrases, over_a)
        best_after = float(table["auroc"].iloc[0])
        stages.proposal_rounds.append({
            "direction": described.name, "kind": "refine", "round": index + 1, "proposer": stages.proposer.spec,
            "hypotheses_shown": [{"hypothesis": h, "auroc": float(a)} for h, a in zip(top["hypothesis"], top["auroc"])],
            "images_a": sampled_images(shown_over), "images_b": sampled_images(shown_other),
            "captions_a": captions_a, "captions_b": captions_b,
            **asked, "new_phrases": new, "best_auroc_before": best_before, "best_auroc_after": best_after,
            "llm_calls": len(asked["requests"]),
        })
        if not asked["requests"][-1]["phrases"]:
            # As in a proposal round: an answer with no usable list, even asked again, is the service's failure.
            answer = asked["requests"][-1]["answer"]
            reason = f"{stages.proposer.spec} gave no usable list, even when asked again; answer began {answer[:200]!r}"
            return phrases, RefinementStop(direction, index + 1, reason)
        if best_after <= best_before:
            break
    return phrases, None
