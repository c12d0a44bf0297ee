"""Where image sets come from: one module per kind of set, tried in order by :func:`load_image_set`.

Each kind is a module with ``accepts(source) -> bool`` and ``load(source, options) -> ImageSet``;
``source`` is a :class:`~pathlib.Path` (for anything given as a path) or a list (for any
other iterable). The first kind that accepts a source loads it, so the order matters: a
``datasets`` folder is a table before it is a folder, and a list of PIL images is taken
before a list of paths. A new kind of set is a module here and its place in :data:`SOURCES`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from visdiff.decoding import has_image_extension
from visdiff.errors import InputError
from visdiff.file_hashes import FileHashMemo
from visdiff.image_sets import ImageSet, display_path
from visdiff.sources import folder, path_list, pil_images, table, webdataset
from visdiff.sources.base import LoadOptions
from visdiff.sources.braces import has_braces
from visdiff.tables import DEFAULT_GROUP_COLUMN, TABLE_SUFFIXES

SOURCES = (table, folder, webdataset, pil_images, path_list)


def load_image_set(source, *, group: str | None = None, group_column: str = DEFAULT_GROUP_COLUMN,
                   where: Mapping[str, str] | None = None, name: str | None = None,
                   hashes: FileHashMemo | None = None, pair_by: str | None = None) -> ImageSet:
    """Build an :class:`ImageSet` from a folder, a table, tar shards, a list of paths, or PIL images.

    Parameters
    ----------
    source : folder, table, tar shards, sequence of paths, sequence of ``PIL.Image.Image``, or ImageSet
        A folder is searched recursively for image files (sorted). A table is a CSV, a Parquet
        file or a ``datasets`` ``save_to_disk`` folder with a path column (relative to the
        table) or an image-bytes column (see :mod:`visdiff.tables`). Tar shards are one
        WebDataset ``.tar`` or a brace pattern of them, ``shards-{000..009}.tar`` (see
        :mod:`visdiff.sources.webdataset`).
    group : str, optional
        Which value of the group column to take from a table with several groups.
    group_column : str
        The table's group column (default ``group_name``, as in VisDiffBench's CSVs).
    where : mapping, optional
        Keep only the table rows whose columns equal these values.
    name : str, optional
        Label for messages and reports; defaults to the folder or group name.
    hashes : FileHashMemo, optional
        Remembered hashes of unchanged files (:meth:`CacheRoot.file_hashes`), so they are not
        read again.
    pair_by : str, optional
        A table column whose value becomes each image's ``pair_key`` (see :mod:`visdiff.pairs`).

    Unreadable, empty or non-image files are skipped with one warning each and listed in
    ``ImageSet.skipped``. A missing path raises :class:`InputError`.
    """
    if isinstance(source, ImageSet):
        return source
    table.check_table_options(source, group=group, where=where, pair_by=pair_by)
    given = _as_path_or_list(source)
    options = LoadOptions(name=name, hashes=hashes, group=group, group_column=group_column, where=where,
                          pair_by=pair_by)
    loader = next((kind for kind in SOURCES if kind.accepts(given)), None)
    if loader is None:  # only a path gets here: a file of no kind of set
        raise _not_a_set(given)
    return loader.load(given, options)


def existing_path(source: str | os.PathLike) -> Path:
    """``source`` as a Path, or ``InputError`` when nothing is there (for a brace pattern of
    tar shards: when a shard it names is not there)."""
    path = Path(source)
    if webdataset.accepts(path) and has_braces(str(path)):
        webdataset.shard_paths(path)
    elif not path.exists():
        raise InputError(f"no such file or folder: {display_path(path)}")
    return path


def _as_path_or_list(source) -> Path | list:
    if isinstance(source, (str, os.PathLike)):
        return existing_path(source)
    if isinstance(source, (bytes, Mapping)) or not isinstance(source, Iterable):
        raise InputError(f"cannot use {type(source).__name__} as an image set: give a folder, a table, "
                         "tar shards, a list of paths or PIL images, or an ImageSet")
    return list(source)


def _not_a_set(path: Path) -> InputError:
    """One image where a set is expected is most often a shell pattern (dir/*.jpg) that gave
    one argument per file."""
    parent, suffix = display_path(path.parent), display_path(path.suffix)
    hint = (f"; give the folder {parent} (a shell pattern like {parent}/*{suffix} passes each file as a set)"
            if has_image_extension(path) else "")
    return InputError(f"{display_path(path)} is neither a folder nor a table of images "
                      f"({', '.join(sorted(TABLE_SUFFIXES))}, or a datasets save_to_disk folder), "
                      f"nor WebDataset tar shards ({webdataset.SUFFIX}){hint}")
