"""Dry runs (``--dry-run``): what a run would do, from its sets and the cache alone.

The sets are read (files hashed, as a run reads them); no model loads and no request is sent.
A plan counts, per run:

- images to embed, cached or new (a scorer of embeddings);
- images the proposer's rounds would caption, cached or new: the rounds' samples are drawn as
  the run draws them (same seed), so these are the images the run would caption;
- LLM requests per stage (``captioning``, ``proposing``, ``refining``, ``ranking``, ``judging``)
  with estimated tokens (:mod:`visdiff.llm.tokens`): each proposal round's messages are built
  from the real templates with the cached captions, a caption not yet made counted as
  :data:`PLACEHOLDER_CAPTION_TOKENS`; a round whose every caption is cached is looked up in the
  LLM answer cache (``cached``: it would cost nothing). What depends on answers not yet given
  (how many hypotheses survive, refinement's early stop) is counted at its bound:
  ``rounds x --hypotheses`` hypotheses a direction, ``--refine`` rounds;
- the cost of those tokens where prices are known (:func:`visdiff.llm.usage.usage_record`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from visdiff.comparison import holdout_split, mixed_for_purity, proposer_views
from visdiff.image_sets import ImageItem, ImageSet
from visdiff.llm.prices import PriceTable
from visdiff.multi import others_of
from visdiff.llm.tokens import CHARS_PER_TOKEN, image_sizes, message_tokens
from visdiff.llm.usage import summed_rows, usage_line, usage_record
from visdiff.pairs import paired_positions
from visdiff.proposers import PROPOSERS, ProposalContext
from visdiff.proposers.chat import ChatProposer
from visdiff.refine import TOP_HYPOTHESES
from visdiff.registry import parse_spec
from visdiff.scorers import SCORERS
from visdiff.stages import RunStages
from visdiff.value_comparison import check_options, end_positions

# A caption not in the cache yet: about a BLIP-2 caption's length.
PLACEHOLDER_CAPTION_TOKENS = 20
PLACEHOLDER_CAPTION = "x" * (PLACEHOLDER_CAPTION_TOKENS * CHARS_PER_TOKEN)
# A listed phrase with its bullet and line break ("- dogs playing in snow").
PHRASE_TOKENS = 8
# What stands for a hypothesis not proposed yet (refinement, ranking and judging requests).
PLACEHOLDER_HYPOTHESIS = "dogs playing in deep snow"


@dataclass
class ImageCount:
    """Images a stage needs, and how many of them the cache holds."""

    images: int = 0
    cached: int = 0

    def add(self, other: ImageCount) -> None:
        self.images += other.images
        self.cached += other.cached

    def record(self) -> dict:
        return {"images": self.images, "cached": self.cached, "new": self.images - self.cached}


@dataclass
class RunPlan:
    """What a run would do (see module doc); :meth:`add` sums the plans of several units."""

    units: int = 0
    images: int = 0
    # At most this many hypotheses more true of A (a bound: answers decide): a bench judges them all.
    hypotheses: int = 0
    skipped_units: list[str] = field(default_factory=list)
    embeddings: ImageCount = field(default_factory=ImageCount)
    captions: ImageCount = field(default_factory=ImageCount)
    llm_rows: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, other: RunPlan) -> None:
        self.units += other.units
        self.images += other.images
        self.hypotheses += other.hypotheses
        self.skipped_units += other.skipped_units
        self.embeddings.add(other.embeddings)
        self.captions.add(other.captions)
        self.llm_rows = summed_rows([*self.llm_rows, *other.llm_rows])
        self.notes += [note for note in other.notes if note not in self.notes]

    def count_requests(self, stage: str, model: str, *, requests: int, cached: int = 0, prompt_tokens: int = 0,
                       completion_tokens: int = 0) -> None:
        self.llm_rows = summed_rows([*self.llm_rows, {"stage": stage, "model": model, "requests": requests - cached,
                                                      "cached": cached, "prompt_tokens": prompt_tokens,
                                                      "completion_tokens": completion_tokens}])

    def record(self, prices: PriceTable, *, what: str) -> dict:
        """The plan as results record it: ``llm_usage`` as a run's (estimated tokens)."""
        return {"dry_run": what, "units": self.units, "images": self.images, "hypotheses_at_most": self.hypotheses,
                "skipped_units": self.skipped_units,
                "embeddings": self.embeddings.record(), "captions": self.captions.record(),
                "llm_usage": usage_record(self.llm_rows, prices), "notes": self.notes}


class PlannedCaptioning:
    """Stands in for the run's captioning stage while a plan builds the proposer's messages:
    cached captions as they are, a placeholder for the rest; counts the images asked for."""

    def __init__(self, stages: RunStages) -> None:
        self.captioning = stages.captioning
        self.spec = self.captioning.spec
        self.found: dict[str, str | None] = {}  # content hash -> cached caption (None: to caption), looked up once
        self.items: dict[str, ImageItem] = {}
        self.all_cached = True  # of the images asked since :meth:`start_round`

    def start_round(self) -> None:
        self.all_cached = True

    def caption(self, image_set: ImageSet) -> dict[str, str]:
        captions = {}
        for item in image_set.items:
            if item.key not in self.found:
                self.found[item.key], self.items[item.key] = self.captioning.cached_caption(item), item
            cached = self.found[item.key]
            self.all_cached &= cached is not None
            captions[item.key] = cached if cached is not None else PLACEHOLDER_CAPTION
        return captions

    def count(self) -> ImageCount:
        return ImageCount(len(self.found), sum(caption is not None for caption in self.found.values()))

    def new_items(self) -> list[ImageItem]:
        """The images asked for that the cache has no caption of."""
        return [self.items[key] for key, caption in self.found.items() if caption is None]


def plan_compare(stages: RunStages, sets: list[ImageSet]) -> RunPlan:
    """The plan of ``compare`` on ``sets`` (two, or each against the others)."""
    return _plan_sets(stages, sets, ranking=True)


def plan_propose(stages: RunStages, sets: list[ImageSet]) -> RunPlan:
    """The plan of ``propose``: ``compare``'s without the ranking's requests."""
    return _plan_sets(stages, sets, ranking=False)


def plan_by_value(stages: RunStages, image_set: ImageSet, values: np.ndarray) -> RunPlan:
    """The plan of a comparison by value (``--score-col``): every image embedded, the
    proposer reading the two ends of the value."""
    check_options(stages.options)
    top, bottom = end_positions(values)
    plan = _plan_sets(stages, [image_set.subset(top), image_set.subset(bottom)], ranking=True)
    plan.images = len(image_set)
    plan.embeddings = _embeddings(stages, image_set.keys)
    return plan


def _embeddings(stages: RunStages, keys: list[str]) -> ImageCount:
    """The images of ``keys`` to embed, and how many the cache holds (none for a pairwise scorer)."""
    if not stages.scoring.embeds_texts:
        return ImageCount()
    keys = list(dict.fromkeys(keys))
    store = stages.scoring.store
    return ImageCount(len(keys), int(store.contains(keys).sum()) if store is not None else 0)


def _plan_sets(stages: RunStages, sets: list[ImageSet], *, ranking: bool) -> RunPlan:
    options = stages.options
    sets = [image_set.require(2) for image_set in sets]
    if len(sets) == 2:
        sets = list(mixed_for_purity(*sets, options))
    plan = RunPlan(units=1, images=sum(len(s) for s in sets))
    plan.embeddings = _embeddings(stages, [key for image_set in sets for key in image_set.keys])
    # What each direction's proposer reads, as the comparisons show it: (described set, against what).
    if len(sets) == 2:
        views = proposer_views(*sets, holdout=holdout_split(options, *sets))
        directions = [views["a"], *([views["b"]] if options.both_directions else [])]
    else:
        rests, contrasts = others_of(sets, options.seed)
        directions = [proposer_views(image_set, rest, contrast=contrast)["a"]
                      for image_set, rest, contrast in zip(sets, rests, contrasts)]
    if options.rare:
        plan.notes.append("--rare shows the proposer the images least like the other set, chosen from their "
                          "embeddings: counted here as the rounds' uniform samples")
    proposer = stages.proposer
    if isinstance(proposer, ChatProposer):
        captioning = PlannedCaptioning(stages) if PROPOSERS.has(proposer.backend, "reads_captions") else None
        bounds = [_plan_rounds(plan, stages, proposer, captioning, described, other) for described, other in directions]
        plan.notes.append("proposing: an answer without a usable list is asked again once (not counted)")
        if captioning is not None:
            plan.captions = captioning.count()
            _plan_chat_captions(plan, stages, captioning.new_items())
        if options.refine:
            _plan_refinement(plan, proposer, stages, len(directions))
            bounds = [bound + options.refine * proposer.n_hypotheses for bound in bounds]
        plan.hypotheses = bounds[0]
        if ranking and not stages.scoring.embeds_texts:
            _plan_pair_scoring(plan, stages, sets, sum(bounds))
    else:
        plan.notes.append(f"the proposer {proposer.spec} sends no LLM request")
    return plan


def _plan_rounds(plan: RunPlan, stages: RunStages, proposer: ChatProposer, captioning: PlannedCaptioning | None,
                 described: ImageSet, other: ImageSet) -> int:
    """Count one direction's proposal rounds into ``plan``; the bound on its hypotheses."""
    options = stages.options
    pairs = tuple(paired_positions(described, other, column=options.pair_by)) if options.pair_by else ()
    context = ProposalContext(set_a=described, set_b=other, captioning=captioning or stages.captioning,
                              scoring=stages.scoring, seed=options.seed, show_progress=False, pairs=pairs,
                              pair_by=options.pair_by)
    n_rounds = proposer.rounds_needed(context)
    completion = _answer_tokens(proposer)
    for round_index in range(n_rounds):
        if captioning is not None:
            captioning.start_round()
        messages, params, _ = proposer.round_request(context, round_index)
        exact = captioning is None or captioning.all_cached
        cached = int(exact and proposer.client.is_cached(messages, **params))
        plan.count_requests("proposing", proposer.client.model, requests=1, cached=cached,
                            prompt_tokens=(1 - cached) * message_tokens(messages),
                            completion_tokens=(1 - cached) * completion)
    return n_rounds * proposer.n_hypotheses


def _answer_tokens(proposer: ChatProposer) -> int:
    """A list of ``n_hypotheses`` phrases, at most ``max_tokens``."""
    tokens = proposer.n_hypotheses * PHRASE_TOKENS
    return min(tokens, proposer.max_tokens) if proposer.max_tokens else tokens


def _plan_chat_captions(plan: RunPlan, stages: RunStages, new_items: list[ImageItem]) -> None:
    """A chat captioner's requests: one per image not captioned yet."""
    captioner = stages.captioning.captioner
    tokens = [captioner.planned_tokens(*size) for size in image_sizes(new_items)] \
        if hasattr(captioner, "planned_tokens") else []
    if not tokens:
        return
    plan.count_requests("captioning", captioner.client.model, requests=len(tokens),
                        prompt_tokens=sum(t[0] for t in tokens), completion_tokens=sum(t[1] for t in tokens))


def _plan_refinement(plan: RunPlan, proposer: ChatProposer, stages: RunStages, directions: int) -> None:
    """At most ``--refine`` rounds a direction, each showing the best phrases and up to
    ``--samples`` captions of each set (as many more images may be captioned)."""
    options = stages.options
    captions = {str(i): PLACEHOLDER_CAPTION for i in range(proposer.samples_per_set)}
    messages, _ = proposer.refine_request(hypotheses=[(PLACEHOLDER_HYPOTHESIS, 0.75)] * TOP_HYPOTHESES,
                                          captions_a=captions, captions_b=captions, seed=options.seed, round_index=0)
    requests = options.refine * directions
    plan.count_requests("refining", proposer.client.model, requests=requests,
                        prompt_tokens=requests * message_tokens(messages),
                        completion_tokens=requests * _answer_tokens(proposer))
    plan.notes.append(f"refinement: at most {options.refine} round(s) a direction, each captioning up to "
                      f"{2 * proposer.samples_per_set} more images")


def _plan_pair_scoring(plan: RunPlan, stages: RunStages, sets: list[ImageSet], hypotheses: int) -> None:
    """A pairwise scorer that asks an LLM: its requests for every image and (at most) every hypothesis."""
    scorer = stages.scoring.scorer
    if not hasattr(scorer, "planned_tokens") or not hypotheses:
        return
    items = list({item.key: item for image_set in sets for item in image_set.items}.values())
    requests, prompt_tokens, completion_tokens = scorer.planned_tokens(items, hypotheses, PLACEHOLDER_HYPOTHESIS,
                                                                       PLACEHOLDER_CAPTION)
    plan.count_requests("ranking", scorer.client.model, requests=requests, prompt_tokens=prompt_tokens,
                        completion_tokens=completion_tokens)
    plan.notes.append(f"ranking: at most {hypotheses} hypotheses asked about each image"
                      + (", each image captioned first (not counted above)"
                         if SCORERS.has(parse_spec(scorer.spec).backend, "reads_captions") else ""))


def plan_judging(plan: RunPlan, judge, hypotheses: int, *, name_a: str, name_b: str) -> None:
    """An LLM judge's requests: one per proposed hypothesis (every proposal is judged)."""
    if not hasattr(judge, "conversation"):
        return
    messages = judge.conversation(PLACEHOLDER_HYPOTHESIS, name_a=name_a, name_b=name_b)
    plan.count_requests("judging", judge.client.model, requests=hypotheses,
                        prompt_tokens=hypotheses * message_tokens(messages), completion_tokens=hypotheses)
    plan.notes.append("judging: one request per hypothesis proposed, counted at the bound (rounds x --hypotheses)")


def plan_lines(record: dict) -> list[tuple[str, str]]:
    """(label, text) rows for the terminal."""
    rows = [("sets", f"{record['units']} comparison(s), {record['images']:,} images")]
    if record["skipped_units"]:
        rows.append(("skipped", f"{len(record['skipped_units'])}: {', '.join(record['skipped_units'][:5])}"))
    for stage in ("embeddings", "captions"):
        counts = record[stage]
        if counts["images"]:
            verb = "embed" if stage == "embeddings" else "caption"
            rows.append((stage, f"{counts['images']:,} images: {counts['cached']:,} cached, {counts['new']:,} to {verb}"))
    usage = record["llm_usage"]
    for row in usage["by_stage"]:
        cost = "no price" if row["cost_usd"] is None else f"~${row['cost_usd']:.4f}"
        rows.append((f"LLM {row['stage']}", f"{row['model']}: {row['requests']:,} requests (+{row['cached']:,} cached), "
                     f"~{row['prompt_tokens']:,} tokens in, ~{row['completion_tokens']:,} out, {cost}"))
    rows.append(("LLM total", usage_line(usage).removeprefix("LLM: ") if usage["by_stage"] else "no requests"))
    rows += [("note", note) for note in record["notes"]]
    return rows
