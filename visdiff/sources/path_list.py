"""A list of image file paths (Python API), in the order given."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from visdiff.errors import InputError
from visdiff.image_sets import ImageSet, SkippedImage, display_path
from visdiff.sources.base import LoadOptions, assemble
from visdiff.sources.files import probe_files

log = logging.getLogger(__name__)


def accepts(source) -> bool:
    return isinstance(source, list)


def load(paths: list, options: LoadOptions) -> ImageSet:
    """Missing paths are skipped with one warning each; anything but a path is refused."""
    bad = [p for p in paths if not isinstance(p, (str, os.PathLike))]
    if bad:
        raise InputError(f"cannot use {type(bad[0]).__name__} as an image source")
    missing = [p for p in paths if not Path(p).exists()]
    for p in missing:
        log.warning("skipping %s: no such file", display_path(p))
    present = [Path(p) for p in paths if Path(p).exists()]
    return assemble(probe_files(present, options.hashes), name=options.name or "",
                    skipped=[SkippedImage(display_path(p), "no such file") for p in missing])
