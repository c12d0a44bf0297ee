"""Image files on disk, as folders, lists of paths and tables name them: each file checked
to be a regular file before it is read (named pipes and devices are never opened)."""

from __future__ import annotations

import stat
from pathlib import Path

from visdiff.file_hashes import FileHashMemo
from visdiff.image_sets import FileLocator, HeldBytes
from visdiff.sources.base import Candidate, Probed, probe_located, read_and_probe


def file_kind(mode: int) -> str:
    for test, kind in ((stat.S_ISDIR, "folder"), (stat.S_ISFIFO, "named pipe"), (stat.S_ISSOCK, "socket"),
                       (stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device")):
        if test(mode):
            return kind
    return "special file"


def probe_file(locator: FileLocator, held: HeldBytes) -> Probed:
    """(content hash, '') for a regular file whose header PIL recognises, else (None, reason)."""
    path = locator.file
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return None, "no such file" if not path.is_symlink() else "broken link"
    except OSError as e:
        return None, f"cannot read file ({e.strerror or e})"
    if not stat.S_ISREG(mode):
        return None, f"not a regular file ({file_kind(mode)})"
    return read_and_probe(locator, held)


def probe_files(paths: list[Path], hashes: FileHashMemo | None) -> list[Candidate]:
    return probe_located([FileLocator(path) for path in paths], hashes, probe_file)
