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
import io
import json
import logging
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from visdiff.atomic import write_atomic

log = logging.getLogger(__name__)

# Bump when the meaning of stored rows changes (preprocessing, normalisation...).
CACHE_VERSION = 1

# Rows per shard a run commits and a compaction writes: 17 MB shards for 512-d embeddings,
# 42 MB for 1280-d (ViT-bigG-14).
DEFAULT_SHARD_IMAGES = 16_384
# A companion store (text rows) gains a shard with every call that embeds new texts: an
# interactive session or a sweep leaves hundreds, and every fresh process reads each one when
# it loads the index. Past this many shards under DEFAULT_SHARD_IMAGES rows, loading the
# index merges them first.
COMPANION_MAX_SMALL_SHARDS = 64


def store_name(cache_id: str) -> str:
    payload = json.dumps({"cache_id": cache_id, "version": CACHE_VERSION}, sort_keys=True)
    digest = hashlib.sha256(payload.encode()).hexdigest()[:16]
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in cache_id)[:80]
    return f"{safe}-{digest}"


def npy_bytes(array: np.ndarray) -> bytes:
    """``array`` as a .npy file's bytes: written through Python's file object, a full disk says
    ENOSPC (numpy's own writer says only "N requested and M written")."""
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _digests(keys: list[str]) -> np.ndarray:
    return np.frombuffer(b"".join(bytes.fromhex(k) for k in keys), dtype=np.uint8).reshape(-1, 32)


@dataclass(frozen=True)
class _Index:
    """All keys of a store sorted as 32-byte strings, with their shard and row: lookups are
    one vectorised binary search instead of a per-image dict probe."""

    files: list[Path]
    sorted_keys: np.ndarray  # (n,) S32
    shard: np.ndarray  # (n,) int, index into files
    row: np.ndarray  # (n,) int, row within the shard

    @classmethod
    def build(cls, files: list[Path], shard_keys: list[np.ndarray]) -> _Index:
        if not files:
            return cls([], np.zeros(0, "S32"), np.zeros(0, np.int64), np.zeros(0, np.int64))
        keys = np.concatenate([k.view("S32").ravel() for k in shard_keys])
        shard = np.concatenate([np.full(len(k), i, np.int64) for i, k in enumerate(shard_keys)])
        row = np.concatenate([np.arange(len(k), dtype=np.int64) for k in shard_keys])
        order = np.argsort(keys, kind="stable")
        return cls(files, keys[order], shard[order], row[order])

    def extended(self, added: list[tuple[Path, np.ndarray]]) -> _Index:
        """This index plus the shards ``added`` as (embedding file, digests), in one sort."""
        files = self.files + [emb_file for emb_file, _ in added]
        keys = np.concatenate([self.sorted_keys, *(d.view("S32").ravel() for _, d in added)])
        shard = np.concatenate([self.shard, *(np.full(len(d), len(self.files) + i, np.int64)
                                              for i, (_, d) in enumerate(added))])
        row = np.concatenate([self.row, *(np.arange(len(d), dtype=np.int64) for _, d in added)])
        order = np.argsort(keys, kind="stable")
        return _Index(files, keys[order], shard[order], row[order])

    def locate(self, digests: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(shard, row) per query digest; shard -1 where the key is absent."""
        query = digests.view("S32").ravel()
        shard = np.full(len(query), -1, np.int64)
        row = np.zeros(len(query), np.int64)
        if len(self.sorted_keys) and len(query):
            pos = np.minimum(np.searchsorted(self.sorted_keys, query), len(self.sorted_keys) - 1)
            hit = self.sorted_keys[pos] == query
            shard[hit] = self.shard[pos[hit]]
            row[hit] = self.row[pos[hit]]
        return shard, row


class EmbeddingCache:
    """Content-addressed float16 embedding store for one scorer."""

    def __init__(self, cache_dir: Path, cache_id: str, *, compact_above: int | None = None) -> None:
        self.cache_dir = Path(cache_dir)
        self.path = self.cache_dir / "embeddings" / store_name(cache_id)
        self.cache_id = cache_id
        # More small shards than this when the index loads: merge them first (None: never).
        self.compact_above = compact_above
        self._index: _Index | None = None
        # Shards this instance wrote since the index was last sorted: merged on next use, so
        # a run committing many shards sorts the index once per lookup, not once per shard.
        self._added: list[tuple[Path, np.ndarray]] = []
        self._companions: dict[str, EmbeddingCache] = {}

    @classmethod
    def in_folder(cls, path: Path) -> EmbeddingCache:
        """The store kept in folder ``path``, whichever scorer wrote it (for maintenance:
        its rows can be compacted, not looked up by a scorer's ``cache_id``)."""
        store = cls(path.parent.parent, path.name)
        store.path = Path(path)
        return store

    def companion(self, kind: str) -> EmbeddingCache:
        """The store for another kind of row of the same scorer (e.g. ``"text"``), kept
        with its loaded index so repeated lookups in one run read the shards once; it merges
        its small shards when it finds more than :data:`COMPANION_MAX_SMALL_SHARDS`."""
        if kind not in self._companions:
            self._companions[kind] = EmbeddingCache(self.cache_dir, f"{self.cache_id}/{kind}",
                                                    compact_above=COMPANION_MAX_SMALL_SHARDS)
        return self._companions[kind]

    def _shards(self) -> list[Path]:
        if not self.path.is_dir():
            return []
        return sorted(self.path.glob("*.keys.npy"))

    def _valid_shards(self) -> list[tuple[Path, np.ndarray]]:
        """(embedding file, keys) of every readable shard; damaged ones are logged and skipped,
        and so, quietly, are shards that a compaction or clear deleted since the listing."""
        shards = []
        for keys_file in self._shards():
            emb_file = keys_file.with_name(keys_file.name.replace(".keys.npy", ".emb.npy"))
            damaged = keys_file
            try:
                keys = np.load(keys_file, allow_pickle=False)
                if keys.dtype != np.uint8 or keys.ndim != 2 or keys.shape[1] != 32:
                    raise ValueError(f"keys of dtype {keys.dtype} and shape {keys.shape}, expected uint8 (n, 32)")
                damaged = emb_file
                emb = np.load(emb_file, mmap_mode="r", allow_pickle=False)
                if emb.dtype != np.float16 or emb.ndim != 2 or emb.shape[0] != keys.shape[0]:
                    raise ValueError(f"embeddings of dtype {emb.dtype} and shape {emb.shape} for {keys.shape[0]} keys")
            except FileNotFoundError:
                log.debug("cache shard %s went away while the store was read", damaged)
                continue
            # EOFError: a zero-byte or cut .npy header.
            except (OSError, ValueError, EOFError) as e:
                log.warning("ignoring damaged cache shard %s (%s); its images will be recomputed", damaged, e)
                continue
            shards.append((emb_file, keys))
        return shards

    def _load_index(self) -> _Index:
        shards = self._valid_shards()
        small = sum(len(keys) < DEFAULT_SHARD_IMAGES for _, keys in shards)
        if self.compact_above is not None and small > self.compact_above:
            self._compact_now(small)
            shards = self._valid_shards()
        return _Index.build([f for f, _ in shards], [k for _, k in shards])

    def _compact_now(self, small: int) -> None:
        """Merge the small shards unless another process is merging them (its result is then
        read next time) or the cache cannot be written: the lookup goes on either way."""
        from filelock import Timeout

        try:
            before, after = self.compact(DEFAULT_SHARD_IMAGES, wait=False)
        except Timeout:
            return
        except OSError as e:
            log.info("could not merge the %d small shards of cache store %s (%s)", small, self.path, e)
            return
        log.info("merged cache store %s: %d shards -> %d", self.path, before, after)

    def refresh(self) -> None:
        """Forget the loaded index, so shards other processes wrote since are found."""
        self._index = None

    @property
    def index(self) -> _Index:
        if self._index is None:
            self._index = self._load_index()
            self._added.clear()
        elif self._added:
            self._index = self._index.extended(self._added)
            self._added = []
        return self._index

    def contains(self, keys: list[str]) -> np.ndarray:
        """Whether each key has a row, from the index alone (a dry run's count; a row that
        turns out unreadable is still recomputed by :meth:`lookup`)."""
        if not keys:
            return np.zeros(0, dtype=bool)
        shard_of, _ = self.index.locate(_digests(keys))
        return shard_of >= 0

    def lookup(self, keys: list[str]) -> tuple[np.ndarray, np.ndarray | None]:
        """(found mask of len(keys), float16 rows for the found keys in order, or None).

        A shard deleted since the index was built sends the lookup back to the store once,
        re-indexed: another process's compaction moved its rows to a merged shard. A shard
        that cannot be read, a row with NaN/inf, or a row gone with ``cache clear`` in
        another process counts as a miss: recomputed, never served.
        """
        found, rows, vanished = self._read_rows(keys)
        if vanished:
            self.refresh()
            found, rows, _ = self._read_rows(keys)
        if rows is None or not found.any():
            return found, None
        # All found (a warm run): the rows as they are; a masked copy would double the memory.
        return found, rows if found.all() else rows[found]

    def _read_rows(self, keys: list[str]) -> tuple[np.ndarray, np.ndarray | None, bool]:
        """(found mask, (len(keys), d) rows where found or None, whether an indexed shard was gone)."""
        shard_of, row_of = self.index.locate(_digests(keys))
        found = shard_of >= 0
        rows: np.ndarray | None = None
        vanished = False
        for shard in np.unique(shard_of[found]):
            positions = np.flatnonzero(shard_of == shard)
            emb_file = self.index.files[shard]
            try:
                block = np.asarray(np.load(emb_file, mmap_mode="r", allow_pickle=False)[row_of[positions]])
            except FileNotFoundError:
                vanished = True
                found[positions] = False
                continue
            except (OSError, ValueError, EOFError) as e:
                log.warning("cannot read cache shard %s (%s); its images will be recomputed", emb_file, e)
                found[positions] = False
                continue
            if rows is None:
                rows = np.empty((len(keys), block.shape[1]), dtype=np.float16)
            usable = np.isfinite(block).all(axis=1)
            rows[positions[usable]] = block[usable]
            found[positions[~usable]] = False
        return found, rows, vanished

    def add(self, keys: list[str], embeddings: np.ndarray) -> None:
        """Store rows for ``keys`` (float16 on disk) as one new shard."""
        if len(keys) == 0:
            return
        if embeddings.shape[0] != len(keys):
            raise ValueError(f"{len(keys)} keys for {embeddings.shape[0]} embeddings")
        digests = _digests(keys)
        emb_file = self._write_shard(digests, embeddings)
        if self._index is not None:
            self._added.append((emb_file, digests))

    def _write_shard(self, digests: np.ndarray, embeddings: np.ndarray) -> Path:
        shard = f"{os.getpid()}-{uuid.uuid4().hex}"
        emb16 = np.ascontiguousarray(embeddings, dtype=np.float16)
        emb_file = self.path / f"{shard}.emb.npy"
        write_atomic(emb_file, lambda f: f.write(npy_bytes(emb16)))
        write_atomic(self.path / f"{shard}.keys.npy", lambda f: f.write(npy_bytes(digests)))
        return emb_file

    def compact(self, target_rows: int, *, wait: bool = True) -> tuple[int, int]:
        """Merge shards smaller than ``target_rows`` into shards of up to ``target_rows`` rows
        (a key held twice is kept once); returns the shard count before and after. Without
        ``wait``, a compaction already running in another process raises ``filelock.Timeout``
        at once.

        Each merged shard is written whole before the shards it replaces are deleted (keys
        file first), so a reader or a killed compaction never loses a row; one compaction
        runs at a time per store. A process that indexed the store before finds a deleted
        shard gone at its next lookup and indexes the store again.
        """
        from filelock import FileLock

        if not self.path.is_dir():
            return 0, 0
        with FileLock(self.path / ".compact.lock", timeout=-1 if wait else 0):
            shards = self._valid_shards()
            groups: list[list[tuple[Path, np.ndarray]]] = [[]]
            for emb_file, keys in shards:
                if len(keys) >= target_rows:
                    continue
                if sum(len(k) for _, k in groups[-1]) + len(keys) > target_rows:
                    groups.append([])
                groups[-1].append((emb_file, keys))
            merged = 0
            for group in (g for g in groups if len(g) > 1):
                digests = np.concatenate([keys for _, keys in group])
                rows = np.concatenate([np.load(f, allow_pickle=False) for f, _ in group])
                _, first = np.unique(digests.view("S32").ravel(), return_index=True)
                self._write_shard(digests[first], rows[first])
                for emb_file, _ in group:
                    emb_file.with_name(emb_file.name.replace(".emb.npy", ".keys.npy")).unlink(missing_ok=True)
                    emb_file.unlink(missing_ok=True)
                merged += len(group) - 1
        self._index = None
        return len(shards), len(shards) - merged
