"""How images are embedded (never what comes out): shared by the scoring stage and the engines."""

from __future__ import annotations

from dataclasses import dataclass

from visdiff.embeddings.cache import DEFAULT_SHARD_IMAGES
from visdiff.embeddings.writer import DEFAULT_SHARD_SECONDS


@dataclass(frozen=True)
class EmbedSettings:
    """Images per forward pass, decoding workers, how often fresh embeddings are committed
    to the cache, progress bar, and where JPEGs are decoded: ``decode`` "auto" (on the
    scorer's device when it is CUDA, else in the workers), "device" or "workers"
    (:mod:`visdiff.embeddings.jpeg`), and whether at ``full_decode`` scale (else JPEGs are
    decoded at the reduced scale that still covers the model's input: faster, a few pixels differ;
    the embeddings are then cached apart)."""

    batch_size: int = 64
    num_workers: int | None = None
    shard_images: int = DEFAULT_SHARD_IMAGES
    shard_seconds: float = DEFAULT_SHARD_SECONDS
    show_progress: bool | None = None
    decode: str = "auto"
    full_decode: bool = False
