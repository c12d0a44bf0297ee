"""The writer seam: embeddings -> cache shards, committed as the run goes.

A shard is committed every ``shard_images`` images or ``shard_seconds`` seconds, whichever
comes first, so a run killed at any point (SIGKILL included) loses at most the rows not yet
committed: fewer than one shard's worth. Committed shards are ordinary cache shards; a rerun
finds their rows in the cache and encodes only the rest.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from visdiff.embeddings.cache import DEFAULT_SHARD_IMAGES, EmbeddingCache

# At CPU speeds a shard of images takes many minutes; commit at least this often.
DEFAULT_SHARD_SECONDS = 300.0


class ShardWriter:
    """Buffers (key, embedding) rows and commits them to ``store`` as shards.

    With no store (``--no-cache``) nothing is written. Fresh rows stay available in
    :attr:`rows` for the run that computed them.
    """

    def __init__(self, store: EmbeddingCache | None, *, shard_images: int = DEFAULT_SHARD_IMAGES,
                 shard_seconds: float = DEFAULT_SHARD_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.shard_images = shard_images
        self.shard_seconds = shard_seconds
        self.clock = clock
        self.rows: dict[str, np.ndarray] = {}
        self.committed = 0
        self.shards = 0
        self._keys: list[str] = []
        self._blocks: list[np.ndarray] = []
        self._last_commit = clock()

    @property
    def buffered(self) -> int:
        return len(self._keys)

    def add(self, keys: list[str], embeddings: np.ndarray) -> None:
        """Take rows for ``keys``; commit every full shard, and the buffer once
        ``shard_seconds`` have passed since the last commit."""
        self.rows.update(zip(keys, embeddings))
        if self.store is None:
            return
        self._keys.extend(keys)
        self._blocks.append(embeddings)
        while self.buffered >= self.shard_images:
            self._commit(self.shard_images)
        if self.buffered and self.clock() - self._last_commit >= self.shard_seconds:
            self._commit(self.buffered)

    def close(self) -> None:
        """Commit what is left."""
        if self.store is not None and self.buffered:
            self._commit(self.buffered)

    def _commit(self, count: int) -> None:
        buffered = np.concatenate(self._blocks) if len(self._blocks) > 1 else self._blocks[0]
        self.store.add(self._keys[:count], buffered[:count])
        self._keys = self._keys[count:]
        self._blocks = [buffered[count:]] if self._keys else []
        self.committed += count
        self.shards += 1
        self._last_commit = self.clock()
