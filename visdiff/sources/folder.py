"""A folder of image files, searched recursively."""

from __future__ import annotations

import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from visdiff.decoding import has_image_extension, is_image_file
from visdiff.errors import InputError
from visdiff.image_sets import ImageSet, SkippedImage, display_path
from visdiff.sources.base import LoadOptions, assemble, warn_of_non_images
from visdiff.sources.files import file_kind, probe_files

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FolderScan:
    """What a folder holds: image files to read (sorted by path), and what is not one, with
    the reason (sub-folders that cannot be read, special files, files that are not images)."""

    files: list[Path]
    skipped: list[SkippedImage]


def list_image_files(folder: Path) -> FolderScan:
    """The image files under ``folder``, recursively (hidden files and folders excluded).

    Links to folders are followed, as a dataset's set folder is often a folder of links to
    class folders; a folder reached a second time (a link back up, a loop, two links to one
    folder) is read once and the link listed as skipped. Files with an image extension are
    listed (also broken links, so they are reported); other regular files are identified by
    content. Named pipes, devices and sockets are never opened. Everything passed over is in
    ``skipped`` with its reason; unreadable sub-folders and non-image files are logged once
    each as a summary.
    """
    files: list[Path] = []
    skipped: list[SkippedImage] = []
    unreadable: list[str] = []
    folders_read = {_folder_id(folder)}

    def folder_error(error: OSError) -> None:
        unreadable.append(display_path(error.filename))
        skipped.append(SkippedImage(display_path(error.filename), f"cannot read folder ({error.strerror})"))

    def first_visit(sub_folder: Path) -> bool:
        try:
            identity = _folder_id(sub_folder)
        except OSError:  # gone since listed: os.walk reports it if it cannot be read
            return True
        if identity in folders_read:
            skipped.append(SkippedImage(display_path(sub_folder), "link to a folder already read"))
            return False
        folders_read.add(identity)
        return True

    for root, dirs, names in os.walk(folder, onerror=folder_error, followlinks=True):
        dirs[:] = [d for d in sorted(d for d in dirs if not d.startswith(".")) if first_visit(Path(root) / d)]
        for name in sorted(n for n in names if not n.startswith(".")):
            path = Path(root) / name
            try:
                mode = path.stat().st_mode
            except OSError:  # a broken link: reported when read
                mode = stat.S_IFREG
            if not stat.S_ISREG(mode):
                skipped.append(SkippedImage(display_path(path), f"not a regular file ({file_kind(mode)})"))
            elif has_image_extension(path) or is_image_file(path):
                files.append(path)
            else:
                skipped.append(SkippedImage(display_path(path), "not an image file"))
    if unreadable:
        log.warning("cannot read %d sub-folder(s) of %s, skipped: %s", len(unreadable), display_path(folder),
                    ", ".join(unreadable[:3]) + (" ..." if len(unreadable) > 3 else ""))
    warn_of_non_images([s.source for s in skipped if not s.reason.startswith("cannot read folder")], folder)
    return FolderScan(sorted(files), skipped)


def _folder_id(folder: Path) -> tuple[int, int]:
    """(device, inode) of a folder, whatever link leads to it."""
    status = folder.stat()
    return status.st_dev, status.st_ino


def accepts(source) -> bool:
    return isinstance(source, Path) and source.is_dir()


def load(folder: Path, options: LoadOptions) -> ImageSet:
    scan = list_image_files(folder)
    if not scan.files:
        raise InputError(f"folder {display_path(folder)} contains no image files"
                         + (f" ({len(scan.skipped)} other entries skipped)" if scan.skipped else ""))
    return assemble(probe_files(scan.files, options.hashes), name=options.name or folder.name, skipped=scan.skipped)
