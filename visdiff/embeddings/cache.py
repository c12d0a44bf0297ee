"""On-disk image-embedding cache, one store per scorer, rows keyed by image content hash.

Layout: ``<cache_dir>/embeddings/<store>/<shard>.emb.npy`` (float16, n x d) and
``<shard>.keys.npy`` (uint8, n x 32: raw SHA-256 digests). ``<store>`` hashes the scorer's
``cache_id`` with :data:`CACHE_VERSION`. Each write adds a new shard under a unique name,
embeddings first, keys last, each by atomic rename; a shard counts only once its keys file
exists. So concurrent writers never touch the same file and a killed writer leaves at most
an orphan ``.emb.npy`` that readers ignore. Plain ``.npy`` files, loaded with
``allow_pickle=False``; embeddings are memory-mapped so only requested rows are read.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from visdiff.atomic import write_atomic

log = logging.getLogger(__name__)

# Bump when the meaning of stored rows changes (preprocessing, normalisation...).
CACHE_VERSION = 1


def store_name(cache_id: str) -> str:
    payload = json.dumps({"cache_id": cache_id, "version": CACHE_VERSION}, sort_keys=True)
    digest = hashlib.sha256(payload.encode()).hexdigest()[:16]
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in cache_id)[:80]
    return f"{safe}-{digest}"


def _digests(keys: list[str]) -> np.ndarray:
    return np.frombuffer(b"".join(bytes.fromhex(k) for k in keys), dtype=np.uint8).reshape(-1, 32)


@dataclass(frozen=True)
class CacheInfo:
    store: str
    path: Path
    shards: int
    rows: int
    bytes: int


class EmbeddingCache:
    """Content-addressed float16 embedding store for one scorer."""

    def __init__(self, cache_dir: Path, cache_id: str) -> None:
        self.path = Path(cache_dir) / "embeddings" / store_name(cache_id)
        self.cache_id = cache_id
        self._index: dict[bytes, tuple[Path, int]] | None = None

    def _shards(self) -> list[Path]:
        if not self.path.is_dir():
            return []
        return sorted(self.path.glob("*.keys.npy"))

    def _load_index(self) -> dict[bytes, tuple[Path, int]]:
        index: dict[bytes, tuple[Path, int]] = {}
        for keys_file in self._shards():
            emb_file = keys_file.with_name(keys_file.name.replace(".keys.npy", ".emb.npy"))
            try:
                keys = np.load(keys_file, allow_pickle=False)
                emb = np.load(emb_file, mmap_mode="r", allow_pickle=False)
                if keys.ndim != 2 or keys.shape[1] != 32 or emb.ndim != 2 or emb.shape[0] != keys.shape[0]:
                    raise ValueError(f"shapes {keys.shape} and {emb.shape} do not match")
            except (OSError, ValueError) as e:
                log.warning("ignoring damaged cache shard %s (%s); its images will be recomputed", keys_file, e)
                continue
            for row, key in enumerate(keys):
                index[key.tobytes()] = (emb_file, row)
        return index

    @property
    def index(self) -> dict[bytes, tuple[Path, int]]:
        if self._index is None:
            self._index = self._load_index()
        return self._index

    def lookup(self, keys: list[str]) -> tuple[np.ndarray, np.ndarray | None]:
        """(found mask of len(keys), float16 rows for the found keys in order, or None)."""
        index = self.index
        locations = [index.get(bytes.fromhex(k)) for k in keys]
        found = np.array([loc is not None for loc in locations], dtype=bool)
        if not found.any():
            return found, None
        by_file: dict[Path, list[tuple[int, int]]] = {}
        for out_row, loc in enumerate(loc for loc in locations if loc is not None):
            by_file.setdefault(loc[0], []).append((out_row, loc[1]))
        rows: np.ndarray | None = None
        for emb_file, pairs in by_file.items():
            emb = np.load(emb_file, mmap_mode="r", allow_pickle=False)
            if rows is None:
                rows = np.empty((int(found.sum()), emb.shape[1]), dtype=np.float16)
            out_idx, src_idx = np.array(pairs).T
            rows[out_idx] = emb[src_idx]
        return found, rows

    def add(self, keys: list[str], embeddings: np.ndarray) -> None:
        """Store rows for ``keys`` (float16 on disk) as one new shard."""
        if len(keys) == 0:
            return
        if embeddings.shape[0] != len(keys):
            raise ValueError(f"{len(keys)} keys for {embeddings.shape[0]} embeddings")
        shard = f"{os.getpid()}-{uuid.uuid4().hex}"
        digests = _digests(keys)
        emb16 = np.ascontiguousarray(embeddings, dtype=np.float16)
        emb_file = self.path / f"{shard}.emb.npy"
        write_atomic(emb_file, lambda f: np.save(f, emb16, allow_pickle=False))
        write_atomic(self.path / f"{shard}.keys.npy", lambda f: np.save(f, digests, allow_pickle=False))
        if self._index is not None:
            for row, key in enumerate(digests):
                self._index[key.tobytes()] = (emb_file, row)


def cache_info(cache_dir: Path) -> list[CacheInfo]:
    root = Path(cache_dir) / "embeddings"
    infos = []
    for store in sorted(p for p in root.glob("*") if p.is_dir()) if root.is_dir() else []:
        shards = list(store.glob("*.keys.npy"))
        rows = 0
        for s in shards:
            try:
                rows += np.load(s, mmap_mode="r", allow_pickle=False).shape[0]
            except (OSError, ValueError):
                continue
        size = sum(f.stat().st_size for f in store.iterdir() if f.is_file())
        infos.append(CacheInfo(store.name, store, len(shards), rows, size))
    return infos


def clear_cache(cache_dir: Path) -> int:
    """Delete every cached embedding, caption and LLM answer; returns bytes freed."""
    root = Path(cache_dir)
    if not root.is_dir():
        return 0
    freed = sum(f.stat().st_size for f in root.rglob("*") if f.is_file())
    shutil.rmtree(root)
    return freed
