"""A comparison of two image sets kept open for interactive use: embed once, rank many times.

Researchers propose, look at the images, type a sharper hypothesis and rank again. A
:class:`Comparison` loads (or computes) both sets' image embeddings once and keeps them on the
scorer's device for its lifetime, so a later :meth:`Comparison.rank` only embeds the new
texts, scores them with one matrix product per set on the device and computes the exact
statistics there. :func:`visdiff.rank` and :func:`visdiff.compare` (and so the CLI) are one
call on a fresh Comparison: there is one scoring path.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, replace
from functools import cached_property

import numpy as np
import pandas as pd
import torch

from visdiff.errors import InputError
from visdiff.evidence import ThumbnailCache, short_names, top_images
from visdiff.holdout import Holdout
from visdiff.image_sets import ImageSet, warn_shared_images
from visdiff.sources import load_image_set
from visdiff.options import RunOptions
from visdiff.pairs import paired_positions
from visdiff.purity import trade_for_purity
from visdiff.ranking import (
    MERGE_MIN_SCORE_CORRELATION, add_proposal_split, clean_hypotheses, merge_near_duplicates, rank_directions,
)
from visdiff.outliers import least_like
from visdiff.rare import concept_profiles, shown_count
from visdiff.rare_ranking import rank_rare
from visdiff.refine import RefinementFailed, RefinementStop, refine_proposals
from visdiff.result import CompareResult, ImageGallery, RankedTable
from visdiff.stages import RunStages
from visdiff.stats import score_correlation

log = logging.getLogger(__name__)

SIDES = ("a", "b")
# The purity trade's own random stream (beside the proposer's rounds, drawn from the same seed).
PURITY_STREAM = 7
# Thumbnails in a notebook are smaller than in the report: a gallery is one row of a cell.
NOTEBOOK_THUMBNAIL_SIZE = 96


def load_sets(set_a, set_b, stages: RunStages) -> tuple[ImageSet, ImageSet]:
    """Sets A and B (files hashed through the run cache's memo), at least 2 readable images
    each, with their pair keys when the run pairs them (checked here, before any embedding);
    a warning when they hold the same images, some of the same, or one image twice."""
    options = stages.options
    hashes, pair_by = stages.cache.file_hashes(), options.pair_by
    image_set_a = load_image_set(set_a, name=options.name_a, hashes=hashes, pair_by=pair_by).require(2)
    image_set_b = load_image_set(set_b, name=options.name_b, hashes=hashes, pair_by=pair_by).require(2)
    if pair_by:
        paired_positions(image_set_a, image_set_b, column=pair_by)
    for image_set in (image_set_a, image_set_b):
        image_set.warn_of_repeats()
    if sorted(image_set_a.keys) == sorted(image_set_b.keys):
        log.warning("set A and set B hold the same images: no hypothesis can tell them apart (every AUROC is 0.5)")
    else:
        warn_shared_images([image_set_a, image_set_b])
    return image_set_a, image_set_b


def holdout_split(options: RunOptions, set_a: ImageSet, set_b: ImageSet) -> Holdout | None:
    """The proposal and held-out splits of A and B with ``options.holdout``, else None."""
    return Holdout.split({"a": set_a, "b": set_b}, options.holdout, options.seed) if options.holdout else None


def proposer_views(set_a: ImageSet, set_b: ImageSet, *, contrast: ImageSet | None = None,
                   holdout: Holdout | None = None) -> dict[str, tuple[ImageSet, ImageSet]]:
    """What the proposer reads to describe each side ("a", "b"), and against what: the sets,
    A against B's ``contrast`` (several sets), or with ``holdout`` the proposal splits (several
    sets refuse --holdout, so there is no contrast to split)."""
    if holdout is not None:
        split = holdout.proposal_sets({"a": set_a, "b": set_b})
        return {"a": (split["a"], split["b"]), "b": (split["b"], split["a"])}
    return {"a": (set_a, set_b if contrast is None else contrast), "b": (set_b, set_a)}


def mixed_for_purity(set_a: ImageSet, set_b: ImageSet, options: RunOptions) -> tuple[ImageSet, ImageSet]:
    """The sets with a fraction ``1 - options.purity`` of A traded for images of B (``--purity``)."""
    if options.purity == 1.0:
        return set_a, set_b
    items_a, items_b, traded = trade_for_purity(set_a.items, set_b.items, options.purity,
                                                np.random.default_rng([options.seed, PURITY_STREAM]))
    log.info("purity %g: %d image(s) of A traded for as many of B", options.purity, traded)
    return replace(set_a, items=tuple(items_a)), replace(set_b, items=tuple(items_b))


class Comparison:
    """Image sets A and B with their embeddings, ready to propose, rank and show.

    Parameters
    ----------
    set_a, set_b : folder, CSV, list of paths or PIL images, or ImageSet
        Anything :func:`visdiff.load_image_set` takes; at least 2 readable images each.
    options, **keywords
        Run options as for :func:`visdiff.compare` (``scorer``, ``device``, ``profile``...;
        ``captioner``, ``proposer`` and ``scorer`` may be built objects).

    Images that fail to decode leave the sets here, before anything is proposed from them.
    Stage seconds accumulate in :attr:`timings` over the comparison's life.

    With ``holdout`` the proposer sees only the proposal split of each set (:attr:`holdout`)
    and tables rank by the held-out images' statistics, with the proposal split's beside them.
    """

    def __init__(self, set_a, set_b, options: RunOptions | None = None, **keywords) -> None:
        self._load(RunStages.from_keywords(options, keywords), set_a, set_b)

    @classmethod
    def of_stages(cls, stages: RunStages, set_a, set_b) -> Comparison:
        """A comparison of ``set_a`` and ``set_b`` run by ``stages``, which the caller built
        (:func:`visdiff.compare`: with its proposer, checked before any image is read)."""
        comparison = cls.__new__(cls)
        comparison._load(stages, set_a, set_b)
        return comparison

    def _load(self, stages: RunStages, set_a, set_b) -> None:
        with stages.timings.stage("load_images"):
            image_set_a, image_set_b = mixed_for_purity(*load_sets(set_a, set_b, stages), stages.options)
        holdout = holdout_split(stages.options, image_set_a, image_set_b)  # too large a fraction fails before embedding
        embedded = stages.scoring.embed_sets(image_set_a, image_set_b)
        # Images that fail to decode leave the sets, and the split is then made again without them.
        unchanged = all(kept.keys == loaded.keys for (_, kept), loaded in zip(embedded, (image_set_a, image_set_b)))
        self._keep(stages, *embedded, holdout=holdout if unchanged else None)

    @classmethod
    def of_embedded(cls, stages: RunStages, embedded_a: tuple, embedded_b: tuple, *,
                    contrast: ImageSet | None = None) -> Comparison:
        """A comparison of sets that ``stages.scoring.embed_sets`` embedded already (its
        ``(embeddings, set)`` pairs), sharing ``stages``: a :class:`~visdiff.multi.MultiComparison`
        embeds all its sets in one pass. ``contrast`` (embedded in that pass too) is what the
        proposer sees of B instead of all of it."""
        comparison = cls.__new__(cls)
        comparison._keep(stages, embedded_a, embedded_b, contrast=contrast)
        return comparison

    def _keep(self, stages: RunStages, embedded_a: tuple, embedded_b: tuple, *,
              contrast: ImageSet | None = None, holdout: Holdout | None = None) -> None:
        self.stages = stages
        (emb_a, image_set_a), (emb_b, image_set_b) = embedded_a, embedded_b
        self.set_a: ImageSet = image_set_a.require(2)
        self.set_b: ImageSet = image_set_b.require(2)
        self.holdout: Holdout | None = holdout or holdout_split(stages.options, self.set_a, self.set_b)
        # A pairwise scorer (vqa, caption-llm) has no embeddings: its blocks are the usable images.
        # Embeddings are the scoring stage's resident blocks (float16 on a GPU), not copies.
        self._pairwise = not self.stages.scoring.embeds_texts
        self._embeddings = {"a": emb_a, "b": emb_b}
        self._proposer_sees = proposer_views(self.set_a, self.set_b, contrast=contrast, holdout=self.holdout)
        if self.options.rare:
            self._show_least_like_other()
        self._texts: dict[str, torch.Tensor] = {}
        self._thumbnails = ThumbnailCache(NOTEBOOK_THUMBNAIL_SIZE)

    def _show_least_like_other(self) -> None:
        """--rare: the proposer is shown each set's images least like the other set (of the
        proposal splits with holdout), not a uniform sample: a rare difference lives there."""
        sets = {"a": self.set_a, "b": self.set_b}
        everything = {side: list(range(len(sets[side]))) for side in SIDES}
        positions = self.holdout.proposal if self.holdout is not None else everything
        profiles = concept_profiles(self.stages.scoring, self._embeddings)
        for side, other in (("a", "b"), ("b", "a")):
            seen = positions[side]
            picks = least_like(profiles[side][seen], profiles[other][positions[other]],
                               shown_count(len(seen), self.options))
            self._proposer_sees[side] = (sets[side].subset([seen[i] for i in picks]), self._proposer_sees[side][1])

    @property
    def options(self) -> RunOptions:
        return self.stages.options

    @property
    def device(self) -> torch.device:
        return self.stages.scoring.device

    @property
    def timings(self) -> dict[str, float]:
        return self.stages.timings.as_dict()

    def embeddings(self, side: str) -> torch.Tensor:
        """The resident (n, d) image embeddings of set ``side`` ("a" or "b")."""
        return self._embeddings[_check_side(side)]

    def _text_embeddings(self, texts: Sequence[str], *, defer_write: bool = False) -> torch.Tensor:
        """(m, d) text embeddings on the device; only texts this comparison has not seen are
        embedded (through the scoring stage's text cache)."""
        new = [t for t in dict.fromkeys(texts) if t not in self._texts]
        if new:
            self._texts.update(zip(new, self.stages.scoring.encode_texts(new, defer_write=defer_write)))
        return torch.stack([self._texts[t] for t in texts])

    def scores(self, hypotheses: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """(n_a, m) and (n_b, m) scores of every image against every hypothesis, float32 on
        the device, columns in ``hypotheses`` order."""
        return self._scores(list(hypotheses), defer_text_write=False)

    def _scores(self, hypotheses: list[str], *, defer_text_write: bool) -> tuple[torch.Tensor, torch.Tensor]:
        blocks = [self._embeddings[side] for side in SIDES]
        if self._pairwise:  # scored (and cached) per pair by the scoring stage, on the host
            return tuple(torch.from_numpy(s) for s in self.stages.scoring.score_embeddings(blocks, hypotheses))
        return self._score_blocks(blocks, hypotheses, defer_text_write=defer_text_write)

    def _score_blocks(self, blocks: list[torch.Tensor], hypotheses: list[str], *,
                      defer_text_write: bool = False) -> tuple[torch.Tensor, ...]:
        """Each block of resident embeddings against every hypothesis: (n_i, m) float32 scores on the device."""
        with self.stages.timings.stage("score"):
            text = self._text_embeddings(hypotheses, defer_write=defer_text_write)
            # float16 rows are widened for the product, so scores equal the float32 path's.
            scorer = self.stages.scoring.scorer
            scores = tuple(scorer.score(block.float(), text).float() for block in blocks)
        # A scorer that can tell a phrase it saw in no image (the offline one) says so by name.
        if hasattr(scorer, "warn_unseen"):
            scorer.warn_unseen(hypotheses, *scores)
        return scores

    def rank(self, hypotheses: Sequence[str], *, alpha: float | None = None) -> RankedTable:
        """Rank ``hypotheses`` by how well their scores separate A from B.

        Returns the :func:`visdiff.rank_scores` table (as :class:`RankedTable`: it shows
        itself as HTML in Jupyter); ``attrs`` records the scorer, the sets' names and sizes, the
        skipped inputs of each set with reasons, and the embedding counts (encoded vs cached).

        Texts seen before are not embedded again, but every call scores all its hypotheses in
        one product: a float32 product's last bit depends on how many columns it has, so
        scores kept from earlier calls would make the table differ from ``visdiff.rank``'s.
        """
        hypotheses = clean_hypotheses(hypotheses)
        try:
            # New texts' cache rows are written while the scores and statistics are computed.
            scores_a, scores_b = self._scores(hypotheses, defer_text_write=True)
            with self.stages.timings.stage("rank"):
                table, _ = self._rank(scores_a, scores_b, {"A": hypotheses}, alpha=alpha)
        finally:
            self.stages.scoring.finish_text_write()
        table.attrs.update(
            scorer=self.stages.scoring.spec,
            set_a=self.set_a.name,
            set_b=self.set_b.name,
            n_a=len(self.set_a),
            n_b=len(self.set_b),
            skipped_a=[asdict(s) for s in self.set_a.skipped],
            skipped_b=[asdict(s) for s in self.set_b.skipped],
            embeddings=asdict(self.stages.scoring.stats),
        )
        return RankedTable.of(table)

    def propose(self, *, over: str = "a") -> list[str]:
        """The proposer's phrases more true of set ``over`` ("a" or "b") than of the other
        (from the proposal splits with ``holdout``)."""
        return self.stages.propose(*self._proposer_sees[_check_side(over)])

    def _rank(self, scores_a: torch.Tensor, scores_b: torch.Tensor, proposals: dict[str, list[str]], *,
              alpha: float | None = None) -> tuple[pd.DataFrame, list[int]]:
        """:func:`rank_directions` on all images, or with ``holdout`` on the held-out images
        with the proposal split's statistics beside them (``attrs["holdout"]`` says so)."""
        alpha = self.options.alpha if alpha is None else alpha
        # --rare ranks by the tail test of A above B instead of AUROC.
        rank = rank_rare if self.options.rare else rank_directions
        if self.holdout is None:
            return rank(scores_a, scores_b, proposals, alpha=alpha)
        held, seen = self.holdout.held_out, self.holdout.proposal
        table, columns = rank(scores_a[held["a"]], scores_b[held["b"]], proposals, alpha=alpha)
        in_sample, _ = rank(scores_a[seen["a"]], scores_b[seen["b"]], proposals, alpha=alpha)
        table = add_proposal_split(table, in_sample)
        table.attrs["holdout"] = self.holdout.summary()
        return table, columns

    def _merge(self, table: pd.DataFrame, columns: list[int], scores: np.ndarray) -> tuple[pd.DataFrame, list[int]]:
        """Near-duplicate rows merged into the best-ranked wording: the cosine of the scorer's
        text embeddings reaches ``merge_threshold``, unless the two rows' scores over this run's
        images (``scores``, one column per row of ``table``) part (:data:`MERGE_MIN_SCORE_CORRELATION`):
        CLIP puts different short phrases ("dogs", "cats") close in text space, but their scores
        part on images of either. ``attrs["merge"]`` records it."""
        threshold = self.options.merge_threshold
        if not self.options.merges:
            return table, columns
        if self._pairwise:
            log.info("a pairwise scorer has no text embeddings: near-duplicate proposals are not merged")
            table.attrs["merge"] = {"threshold": threshold, "merged": 0, "note": "pairwise scorer: no text embeddings"}
            return table, columns
        text = torch.nn.functional.normalize(self._text_embeddings(list(table["hypothesis"])).float(), dim=1)
        correlation = score_correlation(scores)
        # A constant score column (NaN correlation) says nothing either way: the text decides.
        parted = correlation < MERGE_MIN_SCORE_CORRELATION
        merged, kept = merge_near_duplicates(table, np.where(parted, -np.inf, _host(text @ text.T)), threshold)
        merged.attrs["merge"] = {"threshold": threshold, "similarity": "cosine of the scorer's text embeddings",
                                 "min_score_correlation": MERGE_MIN_SCORE_CORRELATION,
                                 "merged": len(table) - len(merged)}
        return merged, [columns[i] for i in kept]

    def proposals(self) -> tuple[dict[str, list[str]], RefinementStop | None]:
        """The phrases of each direction ("A", and "B" with ``both_directions``) after the
        ``refine`` rounds, and the failed round that stopped refinement (None if none did)."""
        proposals = {"A": self.propose(over="a")}
        if self.options.both_directions:
            proposals["B"] = self.propose(over="b")
        if not self.options.refine:
            return proposals, None
        return refine_proposals(self, proposals)

    def compare(self) -> CompareResult:
        """Propose (both ways with ``both_directions``), refine (``refine`` rounds) and rank: the
        :func:`visdiff.compare` result. Its ``timings`` are this comparison's stage seconds so
        far (set-up included); its ``proposal_rounds`` are the rounds of this call.

        A refinement round that fails raises :class:`~visdiff.refine.RefinementFailed` holding
        the result of what was proposed before it (``config["refine_stopped"]`` says why)."""
        rounds_before = len(self.stages.proposal_rounds)
        proposals, refine_stop = self.proposals()
        hypotheses = [h for phrases in proposals.values() for h in phrases]
        scores_a, scores_b = self.scores(hypotheses)
        with self.stages.timings.stage("rank"):
            table, columns = self._rank(scores_a, scores_b, proposals)
            table, columns = self._merge(table, columns, _host(torch.cat([scores_a, scores_b])[:, columns]))
        timings = self.timings
        keys_a, keys_b = set(self.set_a.keys), set(self.set_b.keys)
        captions = self.stages.captioning.captions
        config = {
            **self.stages.describe(),
            "n_a": len(self.set_a), "n_b": len(self.set_b),
            "skipped_a": [asdict(s) for s in self.set_a.skipped],
            "skipped_b": [asdict(s) for s in self.set_b.skipped],
            "n_proposals": {direction: len(phrases) for direction, phrases in proposals.items()},
        }
        if self.holdout is not None:
            config["holdout"] = self.holdout.record({"a": self.set_a, "b": self.set_b})
        if refine_stop is not None:
            config["refine_stopped"] = refine_stop.record()
        if self.options.rare:
            config["rare"] = {"fraction": self.options.rare, "ranked_by": table.attrs.get("ranked_by"),
                              "tail": table.attrs.get("tail"),
                              "shown_a": self._proposer_sees["a"][0].keys}
        result = CompareResult(
            table=table,
            proposals=hypotheses,
            set_a=self.set_a,
            set_b=self.set_b,
            scores_a=_host(scores_a[:, columns]),
            scores_b=_host(scores_b[:, columns]),
            captions_a={k: c for k, c in captions.items() if k in keys_a},
            captions_b={k: c for k, c in captions.items() if k in keys_b},
            config=config,
            timings={**timings, "total": sum(timings.values())},
            # A copy of this call's: the run's list grows with every later proposal.
            proposal_rounds=self.stages.proposal_rounds[rounds_before:],
        )
        if refine_stop is not None:
            raise RefinementFailed(refine_stop, result)
        return result

    def images(self, hypothesis: str, side: str = "a", k: int = 12, *, lowest: bool = False) -> ImageGallery:
        """The ``k`` images of set ``side`` that score highest (``lowest``: lowest) for
        ``hypothesis``, best first, with thumbnails, and the tie when images not shown share the
        last one's score (``tie``); shows itself as HTML in Jupyter."""
        side = _check_side(side)
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise InputError(f"k must be a whole number >= 1, got {k!r}")
        [hypothesis] = clean_hypotheses([hypothesis])
        image_set = self.set_a if side == "a" else self.set_b
        column = self.scores([hypothesis])[SIDES.index(side)][:, 0]
        shown = top_images(image_set, _host(column), self.stages.captioning.captions, k=k,
                           thumbnails=self._thumbnails, names=self._names[side], lowest=lowest)
        return ImageGallery(hypothesis=hypothesis, side=side.upper(), lowest=lowest, images=shown.images, tie=shown.tie)

    @cached_property
    def _names(self) -> dict[str, list[str]]:
        return {"a": short_names(self.set_a), "b": short_names(self.set_b)}

    def __repr__(self) -> str:
        return (f"Comparison(A: {len(self.set_a)} images, B: {len(self.set_b)} images, "
                f"scorer {self.stages.scoring.spec!r} on {self.device}, {len(self._texts)} texts embedded)")


def _check_side(side: str) -> str:
    if not isinstance(side, str) or side.lower() not in SIDES:
        raise InputError(f"side must be 'a' or 'b', got {side!r}")
    return side.lower()


def _host(scores: torch.Tensor) -> np.ndarray:
    return scores.float().cpu().numpy()
