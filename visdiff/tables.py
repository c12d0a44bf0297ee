"""Image sets from tables: a CSV, a Parquet file, or a folder saved with Hugging Face
``datasets``' ``save_to_disk``; one table may hold several sets, told apart by a group column.

A table holds one image per row, as a path (relative to the table's folder) or as the image
bytes (``datasets`` writes an ``image`` column of ``{"bytes", "path"}``). Rows are chosen by
equality filters (``where``) and by the value of the group column (``group_name`` by default, as
in VisDiffBench's CSVs). Unknown columns or values are an ``InputError`` naming those that exist.
A key column (``pair_by``) gives each row a pair key (see :mod:`visdiff.pairs`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from visdiff.errors import InputError
from visdiff.image_sets import display_path
from visdiff.registry import require

TABLE_SUFFIXES = frozenset({".csv", ".parquet", ".pq"})
DEFAULT_GROUP_COLUMN = "group_name"
# Columns holding the image (path or bytes), in order of preference.
IMAGE_COLUMNS = ("path", "image", "image_path", "file", "filepath", "file_name")
_SHOWN_VALUES = 20


@dataclass(frozen=True)
class TableRows:
    """The chosen rows' images: each a path (``str``) or bytes, with a label for messages, and
    with ``pair_by`` its pair key (None for an empty cell)."""

    images: list[str | bytes]
    labels: list[str]
    folder: Path
    group: str | None
    pair_keys: list[str | None] | None = None


def is_table(path: Path) -> bool:
    """A CSV/Parquet file, or a folder written by ``datasets.Dataset.save_to_disk``."""
    if path.is_dir():
        return (path / "dataset_info.json").is_file() and (path / "state.json").is_file()
    return path.suffix.lower() in TABLE_SUFFIXES


def read_table(path: Path) -> pd.DataFrame:
    """The whole table; text columns as str. A column name written twice is an ``InputError``."""
    try:
        table, header = _read_table_and_header(path)
    except pd.errors.EmptyDataError as e:
        raise InputError(f"{display_path(path)} is empty: expected a header with a path column") from e
    except UnicodeDecodeError as e:
        raise InputError(f"{display_path(path)} is not a readable UTF-8 CSV: {e}") from e
    except (pd.errors.ParserError, ValueError) as e:
        raise InputError(f"cannot read table {display_path(path)}: {e}") from e
    except OSError as e:
        raise InputError(f"cannot read table {display_path(path)}: {e.strerror or e}") from e
    _require_unique_columns(path, header)
    # Row numbers in messages count the table's data rows from 1, whichever rows are chosen.
    return table.reset_index(drop=True)


def _read_table_and_header(path: Path) -> tuple[pd.DataFrame, list[str]]:
    """The whole table and its column names as written."""
    if path.is_dir():
        datasets = require("datasets", "datasets")
        dataset = datasets.load_from_disk(str(path))
        # Keep images as they were stored ({"bytes", "path"}), not decoded to PIL here.
        for column, feature in dataset.features.items():
            if isinstance(feature, datasets.Image):
                dataset = dataset.cast_column(column, datasets.Image(decode=False))
        table = dataset.to_pandas()
        return table, list(table.columns)
    if path.suffix.lower() == ".csv":
        # utf-8-sig: spreadsheets often start CSVs with a byte-order mark.
        csv_options = dict(dtype=str, keep_default_na=False, encoding="utf-8-sig")
        # pandas renames a repeated column (path, path.1): only the first row read as data shows it.
        header = pd.read_csv(path, header=None, nrows=1, **csv_options).iloc[0].tolist()
        return pd.read_csv(path, **csv_options), header
    require("pyarrow", "tables")
    table = pd.read_parquet(path)
    return table, list(table.columns)


def _require_unique_columns(path: Path, columns: list[str]) -> None:
    """``InputError`` naming a column name the table repeats: which of them to read is a guess."""
    repeated = sorted({column for column in columns if column and columns.count(column) > 1})
    if repeated:
        raise InputError(f"{display_path(path)} has more than one column named {', '.join(map(repr, repeated))}; "
                         "rename or remove all but one")


def _values(table: pd.DataFrame, column: str) -> str:
    values = sorted(table[column].astype(str).unique())
    more = f" and {len(values) - _SHOWN_VALUES} more" if len(values) > _SHOWN_VALUES else ""
    return f"{values[:_SHOWN_VALUES]}{more}"


def _require_column(table: pd.DataFrame, column: str, path: Path, what: str) -> None:
    if column not in table.columns:
        raise InputError(f"{display_path(path)} has no {what} column {column!r}; columns: {list(table.columns)}")


def _rows_where(path: Path, where: Mapping[str, str] | None) -> pd.DataFrame:
    """The rows of table ``path`` matching every ``where`` equality."""
    table = read_table(path)
    for column, value in (where or {}).items():
        _require_column(table, column, path, "--where")
        matches = table[column].astype(str) == str(value)
        if not matches.any():
            raise InputError(f"{display_path(path)}: no row has {column}={value!r}; values: {_values(table, column)}")
        table = table[matches]
    return table


def require_groups(path: Path, groups: Sequence[str], *, group_column: str = DEFAULT_GROUP_COLUMN,
                   where: Mapping[str, str] | None = None) -> None:
    """Every one of ``groups`` has rows in table ``path`` (after ``where``), or ``InputError``
    names the missing values and the groups there are; cheap, so checked before images are read."""
    table = _rows_where(path, where)
    _require_column(table, group_column, path, "group")
    require_values(table, group_column, groups, path, where)


def require_values(table: pd.DataFrame, group_column: str, groups: Sequence[str], path: Path,
                   where: Mapping[str, str] | None = None) -> None:
    """Every one of ``groups`` occurs in ``table``'s ``group_column`` (the rows ``where`` kept),
    or ``InputError`` names the missing ones and the groups there are."""
    known = set(table[group_column].astype(str))
    missing = [group for group in groups if group not in known]
    if missing:
        # A group of the table that --where filtered out is not "missing" from the table.
        kept = f" among the rows with {', '.join(f'{c}={v}' for c, v in where.items())}" if where else ""
        raise InputError(f"{display_path(path)} has no group {', '.join(map(repr, missing))} in column "
                         f"{group_column!r}{kept}; groups: {_values(table, group_column)}")


def select_rows(path: Path, *, group: str | None = None, group_column: str = DEFAULT_GROUP_COLUMN,
                where: Mapping[str, str] | None = None, pair_by: str | None = None) -> TableRows:
    """The images of the rows of table ``path`` matching every ``where`` equality and ``group``,
    with each row's value of column ``pair_by`` when given.

    Without ``group`` the table must hold one group (or have no group column).
    """
    table = _rows_where(path, where)
    if pair_by is not None:
        _require_column(table, pair_by, path, "--pair-by")
    if group is not None or group_column != DEFAULT_GROUP_COLUMN:
        _require_column(table, group_column, path, "group")
    if group_column in table.columns:
        groups = sorted(table[group_column].astype(str).unique())
        if group is None:
            if len(groups) != 1:
                raise InputError(f"{display_path(path)} has groups {groups[:_SHOWN_VALUES]}; choose one (group= in "
                                 "Python, --group-a/--group-b on the command line)")
            group = groups[0]
        require_values(table, group_column, [group], path, where)
        table = table[table[group_column].astype(str) == group]
    image_column = next((c for c in IMAGE_COLUMNS if c in table.columns), None)
    if image_column is None:
        raise InputError(f"{display_path(path)} has no image column; expected one of {', '.join(IMAGE_COLUMNS)}, "
                         f"found columns {list(table.columns)}")
    images, labels = [], []
    for row, value in zip(table.index + 1, table[image_column]):
        label = f"{display_path(path)}[row {row}]"
        if isinstance(value, dict):  # datasets' Image feature, not decoded
            data, stored_path = value.get("bytes"), value.get("path")
            value = data if data else stored_path
            label = display_path(stored_path) if stored_path else label
        if isinstance(value, (bytes, bytearray)) and value:
            images.append(bytes(value))
        elif isinstance(value, str) and value.strip():
            images.append(value.strip())
        else:
            raise InputError(f"{display_path(path)}, row {row}: empty {image_column!r}")
        labels.append(label)
    folder = path if path.is_dir() else path.parent
    pair_keys = None if pair_by is None else [_pair_key(value) for value in table[pair_by]]
    return TableRows(images, labels, folder, group, pair_keys)


def _pair_key(value) -> str | None:
    """A cell as a pair key: text, or None when empty (a row without a partner)."""
    if value is None or (isinstance(value, float) and value != value) or not str(value).strip():
        return None
    return str(value).strip()


def parse_where(filters: list[str] | None) -> dict[str, str]:
    """``["split=val", "label=dog"]`` -> ``{"split": "val", "label": "dog"}``."""
    out = {}
    for item in filters or []:
        column, sep, value = item.partition("=")
        if not sep or not column.strip():
            raise InputError(f"--where {item!r}: expected COLUMN=VALUE")
        out[column.strip()] = value
    return out


def relative_to(folder: Path, image: str) -> Path:
    """A table's path, relative to the table's folder unless absolute."""
    return Path(image) if os.path.isabs(image) else folder / image
