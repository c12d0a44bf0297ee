"""The scoring stage: a scorer, its embedding store, and the embeddings of one run.

Image embeddings are looked up by content hash in the cache, computed for the misses
(:mod:`visdiff.embeddings.encode`) and kept for the run, so the proposer and the ranker embed
each set once. Text embeddings are cached beside the image embeddings, so a warm run never
loads the model (scorers load their weights on first use).
"""

from __future__ import annotations

import hashlib
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import torch

from visdiff.cache_root import CacheRoot
from visdiff.embeddings.encode import EmbedStats, embed_image_set
from visdiff.embeddings.pair_scoring import PairScoring
from visdiff.embeddings.settings import EmbedSettings
from visdiff.engines import ENGINES, Engine
from visdiff.image_sets import ImageSet
from visdiff.scorers import Scorer, create_scorer
from visdiff.scorers.pairwise import PairwiseScorer
from visdiff.timing import Timings


def resident_dtype(device: torch.device) -> torch.dtype:
    """How a run's embeddings stay on ``device``: float16 on accelerators (the cache stores
    float16, so nothing is lost, and device memory holds twice the images), float32 on the CPU
    (CPU matrix products in float16 are slow). Products widen them to float32."""
    return torch.float32 if device.type == "cpu" else torch.float16


class Scoring:
    """Scores image sets against texts with one scorer, embeddings cached by content.

    Parameters
    ----------
    scorer : str or Scorer
        A spec (built here: cheap, weights load on first use) or a built scorer.
    cache : CacheRoot
        Where embeddings are cached (a disabled root caches nothing).
    timings : Timings, optional
        Where the stage records ``load_scorer``, ``embed`` (with its parts ``embed_read``,
        ``embed_map``, ``embed_write``) and ``score`` seconds.
    device : str, optional
        Device of a scorer built from a spec.
    settings : EmbedSettings
        How images are embedded (images per forward pass, decoding workers, how often fresh
        embeddings are committed to the cache, progress bar): a run's come from
        :meth:`visdiff.options.RunOptions.embed_settings`.
    engine, engine_address
        Where cache misses are embedded: ``local`` (this process) or ``ray`` (Ray Data, on
        this machine or the cluster at ``engine_address``), or an engine built already (a
        run's, :class:`~visdiff.stages.RunStages`); see :mod:`visdiff.engines`.
    scorer_options : dict, optional
        More keywords for building a scorer from a spec (a pairwise scorer's endpoint...).

    A pairwise scorer (:mod:`visdiff.scorers.pairwise`) has a stage of its own,
    :class:`~visdiff.embeddings.pair_scoring.PairScoring`; :func:`create_scoring` picks.
    """

    embeds_texts = True

    def __init__(self, scorer: str | Scorer, *, cache: CacheRoot, timings: Timings | None = None,
                 device: str | None = None, settings: EmbedSettings = EmbedSettings(),
                 engine: str | Engine = "local", engine_address: str | None = None,
                 scorer_options: dict | None = None) -> None:
        self.timings = timings or Timings()
        with self.timings.stage("load_scorer"):
            self.scorer = create_scorer(scorer, device=device, cache=cache, **(scorer_options or {})) \
                if isinstance(scorer, str) else scorer
        if isinstance(self.scorer, PairwiseScorer):
            raise TypeError(f"{self.scorer.spec!r} scores pairs: its stage is PairScoring (create_scoring picks)")
        # Full-scale JPEG decoding changes a few pixels, so its embeddings are kept apart.
        self.store = cache.embeddings(self.scorer.cache_id + ("-full-decode" if settings.full_decode else ""))
        self.settings = settings
        self.engine = ENGINES.create(engine, address=engine_address) if isinstance(engine, str) else engine
        self.stats = EmbedStats()
        self._embedded: dict[tuple[str, ...], torch.Tensor] = {}
        self._text_writer: ThreadPoolExecutor | None = None
        self._text_write: Future | None = None

    @property
    def spec(self) -> str:
        return self.scorer.spec

    @property
    def device(self) -> torch.device:
        return self.scorer.device

    def embed_sets(self, *image_sets: ImageSet) -> list[tuple[torch.Tensor, ImageSet]]:
        """Per set: the embeddings of its readable images (on the scorer's device, in
        :func:`resident_dtype`) and the set without the images that failed to decode.

        All sets go through one pass, so an image in several sets is decoded and encoded once
        (also without a cache) and the decoding workers start once.
        """
        known = [self._known(s) for s in image_sets]
        if all(e is not None for e in known):
            return list(zip(known, (s.release_bytes() for s in image_sets)))
        combined = ImageSet(tuple(item for s in image_sets for item in s.items))
        with self.timings.stage("embed"):
            embeddings, usable = embed_image_set(self.scorer, combined, cache=self.store, settings=self.settings,
                                                 engine=self.engine, stats=self.stats, timings=self.timings)
        # One resident copy: the blocks below are views of it, kept for the proposer and the Comparison.
        embeddings = embeddings.to(resident_dtype(embeddings.device))
        # Failures are per content hash; `usable.skipped` lists them in position order.
        failed_keys = {item.key for item in combined.items} - set(usable.keys)
        reasons = {item.key: s.reason for item, s in zip(
            (it for it in combined.items if it.key in failed_keys), usable.skipped)}
        out, start = [], 0
        for image_set in image_sets:
            # Decoded: the bytes read when the files were hashed are no longer needed.
            kept = image_set.drop({i: reasons[it.key] for i, it in enumerate(image_set.items) if it.key in failed_keys},
                                  warn=False).release_bytes()
            block = embeddings[start: start + len(kept)]
            start += len(kept)
            self._embedded[tuple(kept.keys)] = block
            out.append((block, kept))
        return out

    def start_unit(self) -> None:
        """Count from nothing and let go of the embeddings kept: the next unit of a sweep or
        benchmark counts its own images, and a long sweep holds one unit's embeddings at a time."""
        self.finish_text_write()
        self.stats = EmbedStats()
        self._embedded.clear()

    def _known(self, image_set: ImageSet) -> torch.Tensor | None:
        """The embeddings of ``image_set`` when this run embedded it, or a set holding all its
        images (a split of it: ``--holdout``), else None."""
        keys = tuple(image_set.keys)
        if keys in self._embedded:
            return self._embedded[keys]
        for embedded_keys, block in self._embedded.items():
            rows = {key: i for i, key in enumerate(embedded_keys)}
            if all(key in rows for key in keys):
                return block[[rows[key] for key in keys]]
        return None

    def encode_texts(self, texts: list[str], *, defer_write: bool = False) -> torch.Tensor:
        """Text embeddings on the scorer's device, rows cached beside the image embeddings.
        Rows go through float16 whether cached or fresh, so cold and warm runs score alike.

        With ``defer_write`` fresh rows are written to the cache in a background thread, so
        its file syncs overlap the caller's scoring (an interactive re-rank); the caller
        then calls :meth:`finish_text_write`, which raises the write's error if it failed.
        """
        self.finish_text_write()  # the store is read below: no write of it may be in flight
        if hasattr(self.scorer, "warn_of_cut_texts"):  # cached or not, a cut text is said
            self.scorer.warn_of_cut_texts(texts)
        keys = [hashlib.sha256(t.encode("utf-8")).hexdigest() for t in texts]
        text_id = getattr(self.scorer, "text_cache_id", "")
        text_store = None if self.store is None else self.store.companion(f"text-{text_id}" if text_id else "text")
        found, rows = text_store.lookup(keys) if text_store else (np.zeros(len(texts), bool), None)
        if not found.all():
            missing = [t for t, hit in zip(texts, found) if not hit]
            fresh = self.scorer.encode_texts(missing).float().cpu().numpy().astype(np.float16)
            if text_store is not None:
                missing_keys = [k for k, hit in zip(keys, found) if not hit]
                if defer_write:
                    self._text_writer = self._text_writer or ThreadPoolExecutor(1, thread_name_prefix="visdiff-text-cache")
                    self._text_write = self._text_writer.submit(text_store.add, missing_keys, fresh)
                else:
                    text_store.add(missing_keys, fresh)
            merged = np.empty((len(texts), fresh.shape[1]), np.float16)
            merged[~found] = fresh
            if rows is not None:
                merged[found] = rows
            rows = merged
        return torch.from_numpy(rows.astype(np.float32)).to(self.scorer.device)

    def finish_text_write(self) -> None:
        """Wait for the text rows :meth:`encode_texts` is writing in the background, if any."""
        pending, self._text_write = self._text_write, None
        if pending is not None:
            pending.result()

    def score_embeddings(self, embeddings: list[torch.Tensor], texts: list[str]) -> list[np.ndarray]:
        """(n_i, m) score matrices of each embedding block against the m ``texts``."""
        with self.timings.stage("score"):
            text = self.encode_texts(list(texts))
            return [self.scorer.score(e.float(), text).float().cpu().numpy() for e in embeddings]

    def score(self, image_set: ImageSet, texts: list[str]) -> np.ndarray:
        """(n readable images, m texts) scores of one set."""
        [(embeddings, _)] = self.embed_sets(image_set)
        return self.score_embeddings([embeddings], texts)[0]


def create_scoring(scorer: str | Scorer | PairwiseScorer, *, cache: CacheRoot, timings: Timings | None = None,
                   device: str | None = None, settings: EmbedSettings = EmbedSettings(),
                   scorer_options: dict | None = None, **engine) -> Scoring | PairScoring:
    """The scoring stage of ``scorer`` (a spec, built here, or a built scorer): :class:`Scoring`
    for a scorer of embeddings, embedding as ``settings`` say on the ``engine`` (keywords
    ``engine``, ``engine_address`` of :class:`Scoring`); :class:`PairScoring` for a pairwise scorer."""
    timings = timings or Timings()
    if isinstance(scorer, str):
        with timings.stage("load_scorer"):
            scorer = create_scorer(scorer, device=device, cache=cache, **(scorer_options or {}))
    if isinstance(scorer, PairwiseScorer):
        return PairScoring(scorer, cache=cache, timings=timings, show_progress=settings.show_progress)
    return Scoring(scorer, cache=cache, timings=timings, settings=settings, **engine)
