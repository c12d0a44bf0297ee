"""Engines: where the cache misses of a run are embedded, chosen by name (``--engine``).

``local`` runs the reader/mapper/writer seams in this process; ``ray`` runs the same seams as
Ray Data ``map_batches`` over an actor pool, on this machine or an existing cluster. Every
engine writes the same content-hash keyed shards into the run's cache, so ranking reads them
unchanged. Engine modules import their heavy dependencies (Ray) only when they run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from visdiff.embeddings.cache import EmbeddingCache
from visdiff.embeddings.settings import EmbedSettings
from visdiff.image_sets import ImageItem
from visdiff.registry import Registry
from visdiff.scorers import Scorer
from visdiff.timing import Timings


@dataclass
class EngineResult:
    """Embeddings of the items that decoded (float16, by key), {position: reason} for those
    that did not, and the shards committed."""

    rows: dict[str, np.ndarray] = field(default_factory=dict)
    failures: dict[int, str] = field(default_factory=dict)
    shards: int = 0


class Engine(Protocol):
    name: str

    def embed(self, scorer: Scorer, items: list[ImageItem], store: EmbeddingCache | None,
              settings: EmbedSettings, timings: Timings) -> EngineResult:
        """Embed ``items`` (distinct, none in the cache), committing shards to ``store``;
        ``timings`` gets ``embed_read``, ``embed_map`` and ``embed_write`` seconds."""


ENGINES: Registry[Engine] = Registry("engine", backends=("visdiff.engines.local", "visdiff.engines.ray_engine"))
