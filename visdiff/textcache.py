"""A small content-addressed cache of text values (captions, LLM answers) as JSON files.

Layout: ``<cache_dir>/<namespace>/<key[:2]>/<key>.json`` holding ``{"value": "..."}``. The key
is the SHA-256 of a canonical JSON payload that names everything the value depends on (model,
prompt, settings, input hash) plus the namespace's version, so bumping the version
invalidates old entries. One file per entry, written atomically: concurrent runs never see a
partial entry, and an interrupted run keeps everything it finished. Plain JSON, no pickle.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

from visdiff.atomic import write_text_atomic

log = logging.getLogger(__name__)


class TextCache:
    """Text values keyed by the hash of a JSON payload, in one namespace folder.

    Parameters
    ----------
    cache_dir : Path
        Root cache folder (see :class:`visdiff.cache_root.CacheRoot`).
    namespace : str
        Sub-folder, e.g. ``"captions"`` or ``"llm"``.
    version : int
        Part of every key; bump it when the meaning of stored values changes.
    """

    def __init__(self, cache_dir: Path, namespace: str, *, version: int) -> None:
        self.path = Path(cache_dir) / namespace
        self.namespace = namespace
        self.version = version

    def key(self, payload: dict) -> str:
        """SHA-256 hex digest of ``payload`` (JSON-serialisable) with namespace and version."""
        canonical = json.dumps(
            {"namespace": self.namespace, "version": self.version, "payload": payload},
            sort_keys=True, ensure_ascii=False, separators=(",", ":"),
        )
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    def _file(self, key: str) -> Path:
        return self.path / key[:2] / f"{key}.json"

    def get(self, key: str) -> str | None:
        """The stored value, or ``None`` when absent or damaged (a damaged entry is recomputed)."""
        path = self._file(key)
        try:
            value = json.loads(path.read_text(encoding="utf-8"))["value"]
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as e:
            log.warning("ignoring damaged cache entry %s (%s)", path, e)
            return None
        if not isinstance(value, str):
            log.warning("ignoring damaged cache entry %s (value is not text)", path)
            return None
        return value

    def put(self, key: str, value: str) -> None:
        write_text_atomic(self._file(key), json.dumps({"value": value}, ensure_ascii=False))
