"""Image embeddings of a set: cache lookup -> reader/mapper/writer for the misses -> one matrix.

Only images whose content hash is not in the cache are decoded and encoded; each distinct
image is encoded once even if it appears in both sets. Fresh embeddings are committed to the
cache in shards as the run goes (:mod:`visdiff.embeddings.writer`), so a killed run resumes
where its last shard ended. Images that fail to decode are dropped from the set with a
reason, never embedded as garbage.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from visdiff.embeddings.cache import EmbeddingCache
from visdiff.embeddings.settings import EmbedSettings
from visdiff.engines import Engine
from visdiff.engines.local import LocalEngine
from visdiff.image_sets import ImageItem, ImageSet
from visdiff.scorers import Scorer
from visdiff.timing import Timings


@dataclass
class EmbedStats:
    """What embedding did: images encoded by the model, served from cache, failed; shards
    committed."""

    encoded: int = 0
    cached: int = 0
    failed: int = 0
    shards: int = 0
    seconds: float = 0.0


def embed_image_set(
    scorer: Scorer,
    image_set: ImageSet,
    *,
    cache: EmbeddingCache | None = None,
    settings: EmbedSettings = EmbedSettings(),
    engine: Engine | None = None,
    stats: EmbedStats | None = None,
    timings: Timings | None = None,
) -> tuple[torch.Tensor, ImageSet]:
    """Embeddings of every readable image of ``image_set`` as one float32 tensor on
    ``scorer.device``, and the set without the images that failed to decode.

    The misses are embedded by ``engine`` (default: in this process); ``timings`` gets the
    seconds of each part (``embed_read``, ``embed_map``, ``embed_write``).
    """
    start = time.perf_counter()
    stats = stats if stats is not None else EmbedStats()
    keys = image_set.keys
    if cache is not None:
        found, cached_rows = cache.lookup(keys)
    else:
        found, cached_rows = np.zeros(len(keys), bool), None
    stats.cached += int(found.sum())

    # Distinct missing images, first occurrence of each (loops touch only the misses).
    missing_positions = np.flatnonzero(~found)
    missing: dict[str, ImageItem] = {}
    for i in missing_positions:
        missing.setdefault(keys[i], image_set.items[i])
    failed: dict[str, str] = {}
    fresh_rows: dict[str, np.ndarray] = {}
    if missing:
        todo = list(missing.values())
        result = (engine or LocalEngine()).embed(scorer, todo, cache, settings, timings or Timings())
        failed = {todo[i].key: reason for i, reason in result.failures.items()}
        fresh_rows = result.rows
        stats.encoded += len(result.rows)
        stats.failed += len(result.failures)
        stats.shards += result.shards
    dim = cached_rows.shape[1] if cached_rows is not None else len(next(iter(fresh_rows.values()), ()))

    # torch converts float16 -> float32 several times faster than numpy. All cached (a warm
    # run): converted in one go, without a float32 temporary the size of the matrix.
    if found.all() and cached_rows is not None:
        matrix = torch.from_numpy(cached_rows).float()
    else:
        matrix = torch.empty((len(keys), dim), dtype=torch.float32)
        if cached_rows is not None:
            matrix[torch.from_numpy(found)] = torch.from_numpy(cached_rows).float()
    bad: dict[int, str] = {}
    for i in missing_positions:
        if keys[i] in fresh_rows:
            matrix[i] = torch.from_numpy(fresh_rows[keys[i]]).float()
        else:
            bad[int(i)] = failed[keys[i]]
    if bad:
        keep = torch.ones(len(keys), dtype=torch.bool)
        keep[sorted(bad)] = False
        matrix = matrix[keep]
    stats.seconds += time.perf_counter() - start
    return matrix.to(scorer.device), image_set.drop(bad)
