"""Content hashes of image files without re-reading unchanged files.

An image's identity stays the SHA-256 of its bytes. :class:`FileHashMemo` remembers, per
file, the hash together with the file's size, modification and change times and inode: a
rerun over files whose ``stat`` still matches takes the hash from the memo instead of reading
the file again (git's index does the same). Any change of content changes those fields, so
the file is read and hashed again. The memo is one SQLite file under the cache root
(``hashes/files.sqlite``); only files that were readable images are remembered.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

Probe = Callable[[Path], tuple[str | None, str]]

def _signature(st: os.stat_result) -> tuple[int, int, int, int]:
    return st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino


class FileHashMemo:
    """(absolute path, size, mtime, ctime, inode) -> content hash, in one SQLite file."""

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

    def probe(self, paths: list[Path], probe: Probe) -> list[tuple[str | None, str]]:
        """``probe(path)`` -> (hash or None, reason) for every path, from the memo where the
        file is unchanged; the others are probed and remembered when they pass.

        Not in threads: PIL parses headers holding the GIL, and 4 threads on 2 cores were
        1.8x slower than one (``benchmarks/bench_hashing.py`` before this was removed)."""
        absolute = [os.fsencode(os.path.abspath(p)) for p in paths]
        signatures: list[tuple | None] = []
        for p in paths:
            try:
                signatures.append(_signature(os.stat(p)))
            except OSError:
                signatures.append(None)  # probed below, which says why
        try:
            with self._connect() as connection:
                remembered = dict(self._lookup(connection, [a for a, s in zip(absolute, signatures) if s]))
        except (sqlite3.Error, OSError) as e:
            log.warning("cannot read the file-hash memo %s (%s); hashing every file", self.path, e)
            remembered = {}
        results: list[tuple[str | None, str] | None] = [None] * len(paths)
        todo = []
        for i, (path_bytes, signature) in enumerate(zip(absolute, signatures)):
            entry = remembered.get(path_bytes)
            if signature is not None and entry is not None and entry[:4] == signature:
                results[i] = (entry[4], "")
            else:
                todo.append(i)
        fresh = [probe(paths[i]) for i in todo]
        learned = []
        for i, result in zip(todo, fresh):
            results[i] = result
            if result[0] is not None and signatures[i] is not None:
                learned.append((absolute[i], *signatures[i], result[0]))
        if learned:
            try:
                with self._connect() as connection:
                    connection.executemany("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?)", learned)
            except (sqlite3.Error, OSError) as e:
                log.warning("cannot update the file-hash memo %s (%s)", self.path, e)
        return results

    @staticmethod
    def _lookup(connection: sqlite3.Connection, paths: list[bytes]):
        # SQLite limits the number of parameters of one statement.
        for start in range(0, len(paths), 900):
            chunk = paths[start:start + 900]
            yield from ((row[0], row[1:]) for row in connection.execute(
                f"SELECT path, size, mtime_ns, ctime_ns, inode, sha256 FROM files WHERE path IN "
                f"({','.join('?' * len(chunk))})", chunk))

