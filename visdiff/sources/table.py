"""A table of images (CSV, Parquet, ``datasets`` folder): the chosen rows, in row order.

Reading the table and choosing rows is :mod:`visdiff.tables`; here the rows become images:
paths (relative to the table) are read like files, image bytes stored in the table are used
as they are.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path

from visdiff.decoding import probe_image_bytes
from visdiff.errors import InputError
from visdiff.image_sets import ImageSet, display_path
from visdiff.sources.base import Candidate, LoadOptions, assemble
from visdiff.sources.files import probe_files
from visdiff.tables import TableRows, is_table, relative_to, select_rows

log = logging.getLogger(__name__)

# Tables whose paths lead outside their folder, said once each in a process.
_TABLES_LEADING_OUTSIDE: set[Path] = set()


def accepts(source) -> bool:
    return isinstance(source, Path) and is_table(source)


def load(table: Path, options: LoadOptions) -> ImageSet:
    rows = select_rows(table, group=options.group, group_column=options.group_column, where=options.where,
                       pair_by=options.pair_by)
    paths = [relative_to(rows.folder, image) for image in rows.images if isinstance(image, str)]
    _warn_of_paths_outside(table, rows, paths)
    return assemble(_candidates(rows, probe_files(paths, options.hashes)),
                    name=options.name or rows.group or table.stem)


def _candidates(rows: TableRows, files: list[Candidate]) -> Iterator[Candidate]:
    """Each row's image in row order: its file (probed in one pass, ``files``) or its bytes."""
    files_left = iter(files)
    pair_keys = rows.pair_keys or [None] * len(rows.images)
    for image, label, pair_key in zip(rows.images, rows.labels, pair_keys, strict=True):
        if isinstance(image, str):
            candidate = next(files_left)
        else:
            candidate = Candidate(label, probe_image_bytes(image), data=image)
        yield replace(candidate, pair_key=pair_key)


def _warn_of_paths_outside(table: Path, rows: TableRows, paths: list[Path]) -> None:
    """Fine for a local tool, but worth a word (once per table: a sweep reads it per value
    and side): a shared table may point anywhere."""
    home = rows.folder.resolve()
    outside = [p for p in paths if not p.resolve().is_relative_to(home)]
    if outside and table.resolve() not in _TABLES_LEADING_OUTSIDE:
        _TABLES_LEADING_OUTSIDE.add(table.resolve())
        log.warning("%d path(s) read from %s lead outside its folder (e.g. %s); reading them as given",
                    len(outside), display_path(table), display_path(outside[0]))


def check_table_options(source, *, group: str | None = None, where: Mapping[str, str] | None = None,
                        pair_by: str | None = None) -> None:
    """``InputError`` when a group, ``where`` or ``pair_by`` is given for a source that is not a
    table: row selection and pairing on anything else would be silently ignored."""
    is_path = isinstance(source, (str, os.PathLike))
    if not (group is not None or where or pair_by is not None) or (is_path and is_table(Path(source))):
        return
    what = display_path(source) if is_path else "a list of images"
    if group is not None or where:
        raise InputError(f"a group or --where selects rows of a table; {what} is not one "
                         "(a table is a .csv, .parquet or datasets folder)")
    raise InputError(f"--pair-by {pair_by!r} pairs rows of tables; {what} is not one: list both sets in a "
                     "CSV with a path column and the key column (a .csv, .parquet or datasets folder)")
