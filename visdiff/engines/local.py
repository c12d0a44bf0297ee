"""The ``local`` engine: the reader/mapper/writer seams in this process."""

from __future__ import annotations

from visdiff.embeddings.cache import EmbeddingCache
from visdiff.embeddings.mapper import ImageMapper
from visdiff.embeddings.runner import run_seams
from visdiff.embeddings.settings import EmbedSettings
from visdiff.embeddings.writer import ShardWriter
from visdiff.engines import ENGINES, EngineResult
from visdiff.errors import InputError
from visdiff.image_sets import ImageItem
from visdiff.scorers import Scorer
from visdiff.timing import Timings


class LocalEngine:
    name = "local"

    def embed(self, scorer: Scorer, items: list[ImageItem], store: EmbeddingCache | None,
              settings: EmbedSettings, timings: Timings) -> EngineResult:
        writer = ShardWriter(store, shard_images=settings.shard_images, shard_seconds=settings.shard_seconds)
        failures = run_seams(ImageMapper(scorer, settings.decode, full_decode=settings.full_decode), items, writer, batch_size=settings.batch_size,
                             num_workers=settings.num_workers, show_progress=settings.show_progress, timings=timings)
        return EngineResult(writer.rows, failures, writer.shards)


@ENGINES.register("local")
def _create(model: str, *, address: str | None = None) -> LocalEngine:
    if model or address:
        raise InputError(f"the local engine takes no address, got {model or address!r}; --address is for --engine ray")
    return LocalEngine()
