"""The cache root of a run: one object, made once from ``--cache-dir`` / ``$VISDIFF_CACHE_DIR`` /
``--no-cache``, handed to every stage. A disabled root hands out no stores, so with
``--no-cache`` nothing at all is written anywhere.

Layout under the root: ``embeddings/<store>/`` (image and text embeddings per scorer, see
:mod:`visdiff.embeddings.cache`), ``captions/`` and ``llm/`` (:class:`visdiff.textcache.TextCache`),
``hashes/`` (:class:`visdiff.file_hashes.FileHashMemo`),
and one folder per scorer that keeps files of its own (``offline/``).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from visdiff.embeddings.cache import DEFAULT_SHARD_IMAGES, EmbeddingCache
from visdiff.errors import InputError
from visdiff.file_hashes import FileHashMemo
from visdiff.textcache import TextCache

CACHE_ENV = "VISDIFF_CACHE_DIR"


def default_cache_dir() -> Path:
    """``$VISDIFF_CACHE_DIR``, else the platform's user cache dir (``~/.cache/visdiff`` on Linux)."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("visdiff"))


@dataclass(frozen=True)
class StoreInfo:
    """What one store of the cache holds: ``kind`` is ``embeddings`` or the folder of a text
    store or scorer; ``entries`` rows (embeddings) or files, in ``shards`` files."""

    kind: str
    store: str
    path: Path
    entries: int
    shards: int
    bytes: int


@dataclass(frozen=True)
class CacheRoot:
    """Where a run caches what it computed; ``path`` ``None`` means nowhere (no reads, no writes)."""

    path: Path | None

    @classmethod
    def resolve(cls, cache_dir: str | os.PathLike | None = None, *, use_cache: bool = True) -> CacheRoot:
        """The root for ``cache_dir`` (default :func:`default_cache_dir`), or a disabled one."""
        if not use_cache:
            return cls(None)
        return cls(Path(cache_dir).expanduser() if cache_dir else default_cache_dir())

    @classmethod
    def disabled(cls) -> CacheRoot:
        return cls(None)

    @property
    def enabled(self) -> bool:
        return self.path is not None

    def embeddings(self, cache_id: str) -> EmbeddingCache | None:
        """The embedding store of one scorer (``cache_id``), or None when disabled."""
        return EmbeddingCache(self.path, cache_id) if self.path is not None else None

    def texts(self, namespace: str, *, version: int) -> TextCache | None:
        """A text store (captions, LLM answers), or None when disabled."""
        return TextCache(self.path, namespace, version=version) if self.path is not None else None

    def file_hashes(self) -> FileHashMemo | None:
        """The memo of image-file hashes (unchanged files are not read again), or None when disabled."""
        return FileHashMemo(self.path / "hashes" / "files.sqlite") if self.path is not None else None

    def folder(self, name: str) -> Path | None:
        """A folder for a stage's own files (created by whoever writes there), or None when disabled."""
        return self.path / name if self.path is not None else None

    def check_usable(self) -> None:
        """Fail at once, before any model runs, when the root cannot be a writable folder."""
        if self.path is None:
            return
        check_writable_folder(self.path, "cache dir", hint="; pass another --cache-dir, or --no-cache")

    def info(self) -> list[StoreInfo]:
        """Every store under the root: embedding stores with their row counts, text stores and
        scorer folders with their file counts."""
        if self.path is None or not self.path.is_dir():
            return []
        infos = []
        embeddings = self.path / "embeddings"
        for store in sorted(p for p in embeddings.iterdir() if p.is_dir()) if embeddings.is_dir() else []:
            rows = 0
            shards = list(store.glob("*.keys.npy"))
            for keys in shards:
                try:
                    rows += np.load(keys, mmap_mode="r", allow_pickle=False).shape[0]
                except (OSError, ValueError, EOFError):
                    continue
            infos.append(StoreInfo("embeddings", store.name, store, rows, len(shards), _size(store)))
        for folder in sorted(p for p in self.path.iterdir() if p.is_dir() and p.name != "embeddings"):
            files = [f for f in folder.rglob("*") if f.is_file()]
            infos.append(StoreInfo(folder.name, folder.name, folder, len(files), len(files),
                                   sum(f.stat().st_size for f in files)))
        return infos

    def compact(self, target_rows: int = DEFAULT_SHARD_IMAGES) -> list[tuple[str, int, int]]:
        """Merge the small shards of every embedding store (runs committing every few seconds
        leave many); returns (store, shards before, shards after) per store."""
        embeddings = self.path / "embeddings" if self.path is not None else None
        if embeddings is None or not embeddings.is_dir():
            return []
        return [(store.name, *EmbeddingCache.in_folder(store).compact(target_rows))
                for store in sorted(p for p in embeddings.iterdir() if p.is_dir())]

    def clear(self) -> int:
        """Delete everything cached under the root; returns bytes freed.

        visdiff keeps everything in sub-folders, so a folder with loose files at its top, or the
        home or root folder, is refused with ``InputError``: a mistyped ``--cache-dir`` must not
        wipe a photo folder or a project.
        """
        if self.path is None or not self.path.is_dir():
            return 0
        root = self.path
        resolved = root.resolve()
        if resolved == Path.home().resolve() or resolved == Path(resolved.anchor):
            raise InputError(f"refusing to clear {root}: it is the home or root folder, not a cache")
        loose = sorted(p.name for p in root.iterdir() if not p.is_dir())
        if loose:
            raise InputError(
                f"refusing to clear {root}: it does not look like a visdiff cache "
                f"(it holds files such as {loose[0]!r}); delete it by hand if you mean to"
            )
        freed = _size(root)
        shutil.rmtree(root, onerror=_raise_with_path)
        return freed


def check_writable_folder(folder: Path, what: str, *, hint: str = "") -> None:
    """``InputError`` unless ``folder`` is, or can be created as, a folder this process may write to."""
    existing = next(p for p in (folder, *folder.parents) if p.exists() or p == Path(p.anchor))
    if not existing.is_dir():
        raise InputError(f"{what} {folder}: {existing} exists and is not a folder{hint}")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(f"{what} {folder}: {existing} is not writable{hint}")


def _raise_with_path(function, path: str, excinfo) -> None:
    """rmtree's error, naming the whole path (it reports names relative to open folders)."""
    error = excinfo[1]
    raise OSError(getattr(error, "errno", None), getattr(error, "strerror", None) or str(error), path) from error


def _size(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
