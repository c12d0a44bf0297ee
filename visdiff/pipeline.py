"""The VisDiff pipeline: caption -> propose -> rank, as ``compare`` and ``propose``.

Stages are given as ``backend:model`` specs (built here) or as built objects (so a benchmark
loads its models once for many pairs); what is not given comes from the profile. Models load
on first use: a proposer that needs no captions never loads the captioner.

Captions, LLM answers and embeddings are cached by content, so when a late stage fails, a
rerun redoes nothing that finished.

With ``both_directions`` the proposer is asked twice, once with the sets swapped, so any
proposer can describe B as opposed to A. The result table then has a ``direction`` column:
``"A"`` rows are phrases more true of A, ``"B"`` rows phrases more true of B. On ``"B"`` rows
``auroc``, ``diff``, ``effect_size``, ``t``, ``p_value``, ``p_greater``, ``q_value`` and
``significant`` measure B over A (q-values are computed per direction), while ``mean_a`` and
``mean_b`` stay the means on set A and set B.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from visdiff.captioners import Captioner, hf
from visdiff.captioning import DEFAULT_BATCH_SIZE, CaptionStats, caption_cache, caption_image_set, resolve_captioner
from visdiff.embeddings.encode import EmbedStats, embed_image_set
from visdiff.errors import BackendError
from visdiff.io import ImageSet, load_image_set
from visdiff.profiles import DEFAULT_PROFILE, Profile, get_profile
from visdiff.proposers import ProposalContext, Proposer, create_proposer
from visdiff.rankers import Scorer
from visdiff.ranking import (
    DEFAULT_ALPHA, clean_hypotheses, embed_both, embedding_cache, rank_scores, resolve_scorer, text_embeddings,
)
from visdiff.registry import parse_spec
from visdiff.types import CompareResult

# Proposers that talk to a chat model and take the LLM options (model, rounds, samples...).
CHAT_PROPOSERS = frozenset({"llm", "vlm"})
# Captioners that take a ``device`` option, and the one that takes ``base_url``.
DEVICE_CAPTIONERS = frozenset(family.backend for family in hf.FAMILIES)
ENDPOINT_CAPTIONER = "openai"


def _proposer_spec(proposer: str | None, llm: str | None, profile: Profile) -> str:
    """The proposer spec after applying ``llm``: it picks the chat model of an llm/vlm
    proposer, and turns the profile's non-chat proposer into ``llm:MODEL``."""
    spec = parse_spec(proposer or profile.proposer)
    if not llm:
        return str(spec)
    if spec.backend in CHAT_PROPOSERS:
        return f"{spec.backend}:{llm}"
    if proposer is None:
        return f"llm:{llm}"
    raise BackendError(f"llm={llm!r} applies to the {'/'.join(sorted(CHAT_PROPOSERS))} proposers, not {proposer!r}")


class _Pipeline:
    """The three stages of one run, built from specs or given objects, with timings."""

    def __init__(
        self,
        *,
        profile: str | Profile,
        captioner: str | Captioner | None,
        proposer: str | Proposer | None,
        scorer: str | Scorer | None,
        llm: str | None,
        base_url: str | None,
        rounds: int,
        samples_per_set: int,
        cache_dir: str | Path | None,
        use_cache: bool,
        device: str | None,
        batch_size: int,
        caption_batch_size: int,
        show_progress: bool | None,
    ) -> None:
        self.profile = get_profile(profile)
        self.timings: dict[str, float] = {}
        self.cache_dir = cache_dir
        self.use_cache = use_cache
        self.device = device
        self.base_url = base_url
        self.batch_size = batch_size
        self.caption_batch_size = caption_batch_size
        self.show_progress = show_progress
        self._captioner = captioner if captioner is not None else self.profile.captioner
        self._scorer = scorer if scorer is not None else self.profile.scorer
        self.caption_stats = CaptionStats()
        self.embed_stats = EmbedStats()
        self.captions: dict[str, str] = {}
        self._embeddings: dict[str, torch.Tensor] = {}
        self._caption_cache = caption_cache(cache_dir=cache_dir, use_cache=use_cache)
        self._embedding_cache = None
        with self.timed("load_proposer"):
            self.proposer = self._build_proposer(proposer, llm, base_url, rounds, samples_per_set)

    @contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[stage] = self.timings.get(stage, 0.0) + time.perf_counter() - start

    def _build_proposer(self, proposer, llm, base_url, rounds, samples_per_set) -> Proposer:
        if proposer is not None and not isinstance(proposer, str):
            if llm:
                raise BackendError("llm= selects the model of a proposer spec; it cannot change a built proposer")
            return proposer
        spec = _proposer_spec(proposer, llm, self.profile)
        if parse_spec(spec).backend not in CHAT_PROPOSERS:
            return create_proposer(spec)
        return create_proposer(spec, base_url=base_url, rounds=rounds, samples_per_set=samples_per_set,
                               cache_dir=self.cache_dir, use_cache=self.use_cache)

    @property
    def captioner(self) -> Captioner:
        """Built on first use."""
        if isinstance(self._captioner, str):
            backend = parse_spec(self._captioner).backend
            options = {}
            if self.device and backend in DEVICE_CAPTIONERS:
                options["device"] = self.device
            if self.base_url and backend == ENDPOINT_CAPTIONER:
                options["base_url"] = self.base_url
            with self.timed("load_captioner"):
                self._captioner = resolve_captioner(self._captioner, **options)
        return self._captioner

    @property
    def scorer(self) -> Scorer:
        """Built on first use."""
        if isinstance(self._scorer, str):
            with self.timed("load_scorer"):
                self._scorer = resolve_scorer(self._scorer, **({"device": self.device} if self.device else {}))
        if self._embedding_cache is None and self.use_cache:
            self._embedding_cache = embedding_cache(self._scorer, cache_dir=self.cache_dir, use_cache=True)
        return self._scorer

    def caption(self, image_set: ImageSet) -> dict[str, str]:
        """{content hash: caption} for the readable images of ``image_set`` (cached)."""
        captioner = self.captioner
        with self.timed("caption"):
            captions, _ = caption_image_set(captioner, image_set, cache=self._caption_cache,
                                            batch_size=self.caption_batch_size, show_progress=self.show_progress,
                                            stats=self.caption_stats)
        self.captions.update(captions)
        return captions

    def embed(self, image_set: ImageSet) -> tuple[torch.Tensor, ImageSet]:
        """Image embeddings of the readable images and the set without the unreadable ones."""
        scorer = self.scorer
        if any(key not in self._embeddings for key in image_set.keys):
            with self.timed("embed"):
                emb, image_set = embed_image_set(scorer, image_set, cache=self._embedding_cache,
                                                 batch_size=self.batch_size, show_progress=self.show_progress,
                                                 stats=self.embed_stats)
            self._embeddings.update(zip(image_set.keys, emb, strict=True))
        rows = [self._embeddings[key] for key in image_set.keys]
        return torch.stack(rows) if rows else torch.zeros(0), image_set

    def embed_pair(self, set_a: ImageSet, set_b: ImageSet) -> tuple[torch.Tensor, torch.Tensor, ImageSet, ImageSet]:
        """Both sets in one pass (an image in both is encoded once, workers start once), as
        embeddings and the sets without their unreadable images."""
        scorer = self.scorer  # built (and timed) on first use, outside the embed stage
        with self.timed("embed"):
            emb_a, emb_b, set_a, set_b = embed_both(
                scorer, set_a, set_b, cache=self._embedding_cache, batch_size=self.batch_size,
                show_progress=self.show_progress, embed_stats=self.embed_stats,
            )
        self._embeddings.update(zip(set_a.keys + set_b.keys, torch.cat([emb_a, emb_b]), strict=True))
        return emb_a, emb_b, set_a, set_b

    def encode_texts(self, texts: list[str]) -> torch.Tensor:
        """Text embeddings (cached beside the image embeddings)."""
        return text_embeddings(self.scorer, list(texts), self._embedding_cache)

    def score(self, image_set: ImageSet, texts: list[str]) -> np.ndarray:
        """(n readable images, m texts) scores."""
        emb, _ = self.embed(image_set)
        with self.timed("score"):
            return self.scorer.score(emb, self.encode_texts(texts)).float().cpu().numpy()

    def propose(self, set_a: ImageSet, set_b: ImageSet, *, seed: int) -> list[str]:
        context = ProposalContext(set_a=set_a, set_b=set_b, seed=seed, caption=self.caption, score=self.score,
                                  show_progress=self.show_progress)
        before = self._nested_seconds()
        start = time.perf_counter()
        try:
            return clean_hypotheses(self.proposer.propose(context))
        finally:
            # Captioning and scoring done on the proposer's behalf count under their own stage.
            own = time.perf_counter() - start - (self._nested_seconds() - before)
            self.timings["propose"] = self.timings.get("propose", 0.0) + own

    def _nested_seconds(self) -> float:
        return sum(self.timings.get(s, 0.0) for s in ("caption", "embed", "score", "load_captioner", "load_scorer"))

    def describe(self) -> dict:
        """Specs and settings of the stages that ran (never API keys)."""
        proposer = self.proposer
        record = {
            "profile": self.profile.name,
            "proposer": proposer.describe() if hasattr(proposer, "describe") else {"spec": proposer.spec},
            "scorer": self._scorer if isinstance(self._scorer, str) else self._scorer.spec,
            "captioner": self._captioner if isinstance(self._captioner, str) else self._captioner.spec,
            "captioner_cache_id": None if isinstance(self._captioner, str) else self._captioner.cache_id,
            "captions": asdict(self.caption_stats),
            "embeddings": asdict(self.embed_stats),
        }
        client = getattr(proposer, "client", None)
        if client is not None:
            record["llm_requests"] = asdict(client.stats)
        return record


def _load_sets(set_a, set_b) -> tuple[ImageSet, ImageSet]:
    return load_image_set(set_a, name="A").require(2), load_image_set(set_b, name="B").require(2)


def propose(
    set_a,
    set_b,
    *,
    profile: str | Profile = DEFAULT_PROFILE,
    captioner: str | Captioner | None = None,
    proposer: str | Proposer | None = None,
    scorer: str | Scorer | None = None,
    llm: str | None = None,
    base_url: str | None = None,
    rounds: int = 3,
    samples_per_set: int = 20,
    seed: int = 0,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    device: str | None = None,
    batch_size: int = 64,
    caption_batch_size: int = DEFAULT_BATCH_SIZE,
    show_progress: bool | None = None,
) -> list[str]:
    """Candidate differences: short phrases more true of ``set_a`` than of ``set_b``.

    Takes the same stage and cache options as :func:`compare`; for the B-over-A phrases call
    ``propose(set_b, set_a, ...)``. Returns the phrases in proposal order, duplicates merged.
    """
    pipeline = _Pipeline(
        profile=profile, captioner=captioner, proposer=proposer, scorer=scorer, llm=llm, base_url=base_url,
        rounds=rounds, samples_per_set=samples_per_set, cache_dir=cache_dir, use_cache=use_cache, device=device,
        batch_size=batch_size, caption_batch_size=caption_batch_size, show_progress=show_progress,
    )
    image_set_a, image_set_b = _load_sets(set_a, set_b)
    return pipeline.propose(image_set_a, image_set_b, seed=seed)


def _ranked(scores_a: np.ndarray, scores_b: np.ndarray, hypotheses: list[str], *, alpha: float,
            direction: str | None) -> tuple[pd.DataFrame, list[int]]:
    """rank_scores table (for direction "B": B over A, with mean_a/mean_b swapped back) and the
    score-column order of its rows."""
    if direction == "B":
        table = rank_scores(scores_b, scores_a, hypotheses, alpha=alpha)
        table = table.rename(columns={"mean_a": "mean_b", "mean_b": "mean_a"})[list(table.columns)]
    else:
        table = rank_scores(scores_a, scores_b, hypotheses, alpha=alpha)
    if direction is not None:
        table.insert(1, "direction", direction)
    position = {h: i for i, h in enumerate(hypotheses)}
    return table, [position[h] for h in table["hypothesis"]]


def compare(
    set_a,
    set_b,
    *,
    profile: str | Profile = DEFAULT_PROFILE,
    captioner: str | Captioner | None = None,
    proposer: str | Proposer | None = None,
    scorer: str | Scorer | None = None,
    llm: str | None = None,
    base_url: str | None = None,
    rounds: int = 3,
    samples_per_set: int = 20,
    seed: int = 0,
    alpha: float = DEFAULT_ALPHA,
    both_directions: bool = False,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    device: str | None = None,
    batch_size: int = 64,
    caption_batch_size: int = DEFAULT_BATCH_SIZE,
    show_progress: bool | None = None,
) -> CompareResult:
    """Describe how image set A differs from set B: caption, propose, rank.

    Parameters
    ----------
    set_a, set_b : folder, CSV, list of paths or PIL images, or ImageSet
        Anything :func:`visdiff.load_image_set` takes; at least 2 readable images each.
    profile : {"offline", "laptop", "paper"} or Profile
        Default stage choices (see :mod:`visdiff.profiles`).
    captioner, proposer, scorer : str or built object, optional
        Override the profile's stage: a spec (``blip2:Salesforce/blip2-flan-t5-xxl``,
        ``llm:gpt-4o``, ``open_clip:ViT-bigG-14:laion2b_s39b_b160k``) or a built object.
    llm : str, optional
        Chat model for the llm/vlm proposer; with a non-chat profile proposer it selects
        ``llm:MODEL``.
    base_url : str, optional
        OpenAI-compatible endpoint of the chat proposer and of an ``openai:`` captioner
        (default ``$OPENAI_BASE_URL``).
    rounds, samples_per_set : int
        Proposal rounds, and images sampled per set per round (llm/vlm proposers).
    seed : int
        Seeds the proposer's sampling.
    alpha : float
        False-discovery rate for the ``significant`` flag.
    both_directions : bool
        Also propose and rank phrases more true of B (see module docstring).
    cache_dir, use_cache
        Cache root (default ``$VISDIFF_CACHE_DIR`` or the user cache dir), on or off.
    device : str, optional
        Device for the scorer and Hugging Face captioners.
    batch_size, caption_batch_size : int
        Images per forward pass of the scorer and of the captioner.

    Returns
    -------
    CompareResult
        ``table`` ranked by AUROC, proposals, scores, the captions used, ``config`` (profile,
        specs, prompt name and hash, settings, cache counts) and ``timings`` (seconds per stage).
    """
    total_start = time.perf_counter()
    pipeline = _Pipeline(
        profile=profile, captioner=captioner, proposer=proposer, scorer=scorer, llm=llm, base_url=base_url,
        rounds=rounds, samples_per_set=samples_per_set, cache_dir=cache_dir, use_cache=use_cache, device=device,
        batch_size=batch_size, caption_batch_size=caption_batch_size, show_progress=show_progress,
    )
    with pipeline.timed("load_images"):
        image_set_a, image_set_b = _load_sets(set_a, set_b)
    # Embed first: images that fail to decode leave the sets before anyone proposes from them.
    emb_a, emb_b, image_set_a, image_set_b = pipeline.embed_pair(image_set_a, image_set_b)
    image_set_a.require(2)
    image_set_b.require(2)

    proposals = {"A": pipeline.propose(image_set_a, image_set_b, seed=seed)}
    if both_directions:
        proposals["B"] = pipeline.propose(image_set_b, image_set_a, seed=seed)

    hypotheses = [h for phrases in proposals.values() for h in phrases]
    with pipeline.timed("score"):
        text = pipeline.encode_texts(hypotheses)
        scores_a = pipeline.scorer.score(emb_a, text).float().cpu().numpy()
        scores_b = pipeline.scorer.score(emb_b, text).float().cpu().numpy()
    with pipeline.timed("rank"):
        tables, columns, offset = [], [], 0
        for direction, phrases in proposals.items():
            block = slice(offset, offset + len(phrases))
            table, order = _ranked(scores_a[:, block], scores_b[:, block], phrases, alpha=alpha,
                                   direction=direction if both_directions else None)
            tables.append(table)
            columns += [offset + i for i in order]
            offset += len(phrases)
        table = pd.concat(tables, ignore_index=True) if len(tables) > 1 else tables[0]
        table.attrs["alpha"] = alpha
    pipeline.timings["total"] = time.perf_counter() - total_start

    keys_a, keys_b = set(image_set_a.keys), set(image_set_b.keys)
    config = {
        **pipeline.describe(),
        "seed": seed, "alpha": alpha, "both_directions": both_directions,
        "rounds": rounds, "samples_per_set": samples_per_set,
        "n_a": len(image_set_a), "n_b": len(image_set_b),
        "skipped_a": [asdict(s) for s in image_set_a.skipped],
        "skipped_b": [asdict(s) for s in image_set_b.skipped],
        "n_proposals": {direction: len(phrases) for direction, phrases in proposals.items()},
    }
    return CompareResult(
        table=table,
        proposals=hypotheses,
        set_a=image_set_a,
        set_b=image_set_b,
        scores_a=scores_a[:, columns],
        scores_b=scores_b[:, columns],
        captions_a={k: c for k, c in pipeline.captions.items() if k in keys_a},
        captions_b={k: c for k, c in pipeline.captions.items() if k in keys_b},
        config=config,
        timings=dict(pipeline.timings),
    )
