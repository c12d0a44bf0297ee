"""Content hashes of image files without re-reading unchanged files.

An image's identity stays the SHA-256 of its bytes. :class:`FileHashMemo` remembers, per
file, the hash together with the file's size, modification and change times and inode: a
rerun over files whose ``stat`` still matches takes the hash from the memo instead of reading
the file again (git's index does the same). Any change of content changes those fields, so
the file is read and hashed again. The memo is one SQLite file under the cache root
(``hashes/files.sqlite``); only files that were readable images are remembered. A member of
a tar shard is remembered the same way, under the shard's path and the member's name, signed
by the shard's ``stat``.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

from visdiff.image_sets import Locator

log = logging.getLogger(__name__)

Probe = Callable[[Locator], tuple[str | None, str]]


def _signature(st: os.stat_result) -> tuple[int, int, int, int]:
    return st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino


def _signatures(files: list[Path]) -> list[tuple[int, int, int, int] | None]:
    """Each file's signature, or None where it cannot be stat'ed (probed then, which says
    why); a file named many times (a tar shard, per member) is stat'ed once."""
    known: dict[Path, tuple[int, int, int, int] | None] = {}
    for file in files:
        if file not in known:
            try:
                known[file] = _signature(os.stat(file))
            except OSError:
                known[file] = None
    return [known[file] for file in files]


class FileHashMemo:
    """(absolute path [+ tar member], size, mtime, ctime, inode) -> content hash, in one SQLite file."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Created here so it gets the mode the umask gives any new file (SQLite makes 0644,
        # and its journal files copy the database's mode).
        os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o666))
        connection = sqlite3.connect(self.path, timeout=60)
        connection.execute("CREATE TABLE IF NOT EXISTS files (path BLOB PRIMARY KEY, size INTEGER, "
                           "mtime_ns INTEGER, ctime_ns INTEGER, inode INTEGER, sha256 TEXT) WITHOUT ROWID")
        return connection

    def probe(self, locators: list[Locator], probe: Probe) -> list[tuple[str | None, str]]:
        """``probe(locator)`` -> (hash or None, reason) for every locator, from the memo where
        its file is unchanged; the others are probed and remembered when they pass.

        Not in threads: PIL parses headers holding the GIL, and 4 threads on 2 cores were
        1.8x slower than one (``benchmarks/bench_hashing.py`` before this was removed)."""
        memo_keys = [locator.memo_key for locator in locators]
        signatures = _signatures([locator.file for locator in locators])
        try:
            with self._connect() as connection:
                remembered = dict(self._lookup(connection, [k for k, s in zip(memo_keys, signatures) if s]))
        except (sqlite3.Error, OSError) as e:
            log.warning("cannot read the file-hash memo %s (%s); hashing every file", self.path, e)
            remembered = {}
        results: list[tuple[str | None, str] | None] = [None] * len(locators)
        todo = []
        for i, (memo_key, signature) in enumerate(zip(memo_keys, signatures)):
            entry = remembered.get(memo_key)
            if signature is not None and entry is not None and entry[:4] == signature:
                results[i] = (entry[4], "")
            else:
                todo.append(i)
        fresh = [probe(locators[i]) for i in todo]
        learned = []
        for i, result in zip(todo, fresh):
            results[i] = result
            if result[0] is not None and signatures[i] is not None:
                learned.append((memo_keys[i], *signatures[i], result[0]))
        if learned:
            try:
                with self._connect() as connection:
                    connection.executemany("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?)", learned)
            except (sqlite3.Error, OSError) as e:
                log.warning("cannot update the file-hash memo %s (%s)", self.path, e)
        return results

    @staticmethod
    def _lookup(connection: sqlite3.Connection, memo_keys: list[bytes]):
        # SQLite limits the number of parameters of one statement.
        for start in range(0, len(memo_keys), 900):
            chunk = memo_keys[start:start + 900]
            yield from ((row[0], row[1:]) for row in connection.execute(
                f"SELECT path, size, mtime_ns, ctime_ns, inode, sha256 FROM files WHERE path IN "
                f"({','.join('?' * len(chunk))})", chunk))

