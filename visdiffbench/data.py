"""VisDiffBench loaders: the release's per-split JSONL files and the upstream CSV layouts.

Every loader returns a :class:`Benchmark`: the pairs whose images exist, plus a list of
:class:`DataIssue` records for what was wrong with the files (paths that escape the root,
missing images, duplicate images or pairs, malformed lines). Image *readability* is checked
later, when a pair is run, by :func:`visdiff.load_image_set`.

Field mapping: the release's ``set1``/``set2`` are the ground-truth names of set A and set B
(a correct hypothesis describes ``set1`` as opposed to ``set2``); here they are ``name_a`` and
``name_b``, with ``images_a``/``images_b``, following visdiff's a/b convention.

The split (difficulty) comes from the file or folder name, or from the first folder of the
image paths (``easy/1_a/...``), never from a CSV ``difficulty`` column, which upstream
mislabelled.
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath

from visdiff.errors import InputError
from visdiff.decoding import IMAGE_EXTENSIONS

KNOWN_SPLITS = ("easy", "medium", "hard", "imagenetr", "imagenetstar")
# The ImageNet-R / ImageNet* CSVs pair every group with one base group; ``misc`` is listed in
# ImageNetR.csv but not part of the release and not evaluated.
BASE_GROUPS = {"imagenetr": "imagenet", "imagenetstar": "base"}
EXCLUDED_GROUPS = {"imagenetr": frozenset({"misc"})}
# Upstream CSV paths are relative to the code repository: ./data/VisDiffBench/<split>/...
_CSV_PREFIX = re.compile(r"^(?:\./)?(?:data/)?VisDiffBench/", re.IGNORECASE)
_PAIR_FOLDER = re.compile(r"^(\d+)_([ab])$")


@dataclass(frozen=True)
class BenchPair:
    """One paired image set with its ground truth.

    ``name_a``/``name_b`` are the release's ``set1``/``set2`` names, ``difference`` the axis
    that differs, ``images_a``/``images_b`` existing image files inside the benchmark root.
    """

    id: str
    split: str
    name_a: str
    name_b: str
    difference: str
    images_a: tuple[Path, ...]
    images_b: tuple[Path, ...]
    source: str = ""


@dataclass(frozen=True)
class DataIssue:
    """Something wrong in a benchmark file: ``kind`` is one of ``escapes_root``,
    ``missing_image``, ``duplicate_image``, ``duplicate_pair``, ``malformed``."""

    kind: str
    pair_id: str
    detail: str


@dataclass(frozen=True)
class Benchmark:
    """Pairs in file order plus the issues found while loading them."""

    pairs: tuple[BenchPair, ...]
    issues: tuple[DataIssue, ...] = ()
    sources: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.pairs)

    @property
    def splits(self) -> list[str]:
        """Split names in order of first appearance."""
        return list(dict.fromkeys(p.split for p in self.pairs))

    def select(self, *, splits: Sequence[str] | None = None, limit: int | None = None) -> Benchmark:
        """The pairs of the given splits, at most ``limit`` per split, in file order."""
        if splits is not None:
            unknown = sorted(set(splits) - set(self.splits))
            if unknown:
                raise InputError(f"no split {', '.join(map(repr, unknown))} in the benchmark; splits: {', '.join(self.splits)}")
        if limit is not None and limit < 1:
            raise InputError(f"limit must be at least 1, got {limit}")
        taken: dict[str, int] = {}
        chosen = []
        for pair in self.pairs:
            if splits is not None and pair.split not in splits:
                continue
            if limit is not None and taken.get(pair.split, 0) >= limit:
                continue
            taken[pair.split] = taken.get(pair.split, 0) + 1
            chosen.append(pair)
        return replace(self, pairs=tuple(chosen))


def load_benchmark(source: str | os.PathLike, *, root: str | os.PathLike | None = None) -> Benchmark:
    """Load a benchmark from a JSONL or CSV file, or from a folder of them.

    Parameters
    ----------
    source : path
        A ``.jsonl`` file (release format), ``PairedImageSets.csv``, ``ImageNetR.csv`` /
        ``ImageNetStar.csv``, or a folder: all its ``*.jsonl`` files (the release), or if it
        has none, all its ``*.csv`` files.
    root : path, optional
        The release root that image paths are relative to. Default: the JSONL file's folder;
        for CSVs, ``<csv folder>/VisDiffBench`` if it exists, else the CSV's folder.

    Returns
    -------
    Benchmark
        Pairs from every file, and every :class:`DataIssue` found. Duplicate pairs (same id,
        or same split and set names) across files are reported and kept once.
    """
    path = Path(source)
    if not path.exists():
        raise InputError(f"no such benchmark file or folder: {path}")
    if path.is_dir():
        files = sorted(path.glob("*.jsonl")) or sorted(path.glob("*.csv"))
        if not files:
            raise InputError(f"{path} has no .jsonl or .csv benchmark files")
    else:
        files = [path]
    pairs: list[BenchPair] = []
    issues: list[DataIssue] = []
    for file in files:
        loaded = _load_file(file, root=Path(root) if root is not None else None)
        pairs += loaded.pairs
        issues += loaded.issues
    unique, duplicates = _drop_duplicate_pairs(pairs)
    benchmark = Benchmark(tuple(unique), tuple(issues + duplicates), tuple(str(f) for f in files))
    if not benchmark.pairs:
        detail = f"; first problem: {benchmark.issues[0].detail}" if benchmark.issues else ""
        raise InputError(f"no usable pairs in {path}{detail}")
    return benchmark


def _load_file(path: Path, *, root: Path | None) -> Benchmark:
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return load_jsonl(path, root=root)
    if suffix == ".csv":
        with open(path, newline="", encoding="utf-8-sig") as f:
            header = next(csv.reader(f), [])
        if "difficulty" in header or "difference" in header:
            return load_paired_csv(path, root=root)
        return load_group_csv(path, root=root)
    raise InputError(f"{path}: expected a .jsonl or .csv benchmark file")


def load_jsonl(path: str | os.PathLike, *, root: str | os.PathLike | None = None) -> Benchmark:
    """Load one release-format JSONL file.

    Each line has ``set1``, ``set2``, ``difference`` and either ``set1_images``/``set2_images``
    (lists of paths) or ``set1_folder``/``set2_folder`` (folders of images), relative to
    ``root`` (default: the file's folder). An ``id`` field is used when present, else
    ``<split>-<n>`` with n counting pairs from 1.
    """
    path = Path(path)
    root = Path(root) if root is not None else path.parent
    pairs: list[BenchPair] = []
    issues: list[DataIssue] = []
    for lineno, line in enumerate(_read_lines(path), start=1):
        if not line.strip():
            continue
        where = f"{path.name}:{lineno}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            issues.append(DataIssue("malformed", "", f"{where}: not JSON ({e.msg})"))
            continue
        problem = _check_row(row)
        if problem:
            issues.append(DataIssue("malformed", str(row.get("id", "")) if isinstance(row, dict) else "", f"{where}: {problem}"))
            continue
        rel_a, rel_b = (_listed_images(row, side, root) for side in ("set1", "set2"))
        split = _split_name(path, [*rel_a, *rel_b])
        pair_id = str(row.get("id") or f"{split}-{len(pairs) + 1}")
        images_a, images_b, found = _resolve_sets(pair_id, root, rel_a, rel_b)
        issues += found
        pairs.append(BenchPair(pair_id, split, row["set1"], row["set2"], row.get("difference", ""),
                               images_a, images_b, source=where))
    return Benchmark(tuple(pairs), tuple(issues), (str(path),))


def load_paired_csv(path: str | os.PathLike, *, root: str | os.PathLike | None = None) -> Benchmark:
    """Load ``PairedImageSets.csv`` (``group_name,path,difference,difficulty``).

    A pair is the two folders ``<split>/<index>_a`` (set A, ``set1``) and ``<split>/<index>_b``
    (set B) of the image paths; the split is that first folder, never the ``difficulty``
    column. Set names are the folders' ``group_name``.
    """
    path = Path(path)
    root = _csv_root(path, root)
    folders: dict[tuple[str, str, str], dict] = {}
    issues: list[DataIssue] = []
    for lineno, row in _read_csv(path, required={"group_name", "path", "difference"}):
        rel = _release_relative(row["path"])
        parts = PurePosixPath(rel).parts
        match = _PAIR_FOLDER.match(parts[1]) if len(parts) >= 3 else None
        if match is None:
            issues.append(DataIssue("malformed", "", f"{path.name}:{lineno}: path {row['path']!r} is not <split>/<index>_<a|b>/<file>"))
            continue
        key = (parts[0], match.group(1), match.group(2))
        entry = folders.setdefault(key, {"name": row["group_name"], "difference": row["difference"], "paths": []})
        entry["paths"].append(rel)
    pairs: list[BenchPair] = []
    for (split, index, side), entry in sorted(folders.items(), key=lambda kv: (_split_order(kv[0][0]), int(kv[0][1]), kv[0][2])):
        if side != "a":
            continue
        pair_id = f"{split}-{index}"
        other = folders.get((split, index, "b"))
        if other is None:
            issues.append(DataIssue("malformed", pair_id, f"{path.name}: {split}/{index}_a has no {split}/{index}_b"))
            continue
        images_a, images_b, found = _resolve_sets(pair_id, root, entry["paths"], other["paths"])
        issues += found
        pairs.append(BenchPair(pair_id, split, entry["name"], other["name"], entry["difference"],
                               images_a, images_b, source=path.name))
    return Benchmark(tuple(pairs), tuple(issues), (str(path),))


def load_group_csv(
    path: str | os.PathLike, *, base_group: str | None = None, root: str | os.PathLike | None = None
) -> Benchmark:
    """Load a ``path,group_name`` CSV where every group is compared with one base group.

    This is the ImageNet-R / ImageNet* layout: each rendition or context group (set A) against
    ``imagenet`` / ``base`` (set B). ``base_group`` defaults to the one for the file's split
    (``imagenetr``: ``imagenet``, ``imagenetstar``: ``base``); ImageNet-R's ``misc`` group is
    skipped. The pair id is ``<split>-<group>``, the split the file name in lower case.
    """
    path = Path(path)
    root = _csv_root(path, root)
    split = path.stem.lower()
    base_group = base_group or BASE_GROUPS.get(split)
    groups: dict[str, list[str]] = {}
    for _, row in _read_csv(path, required={"group_name", "path"}):
        groups.setdefault(row["group_name"], []).append(_release_relative(row["path"]))
    if base_group not in groups:
        raise InputError(f"{path}: no base group {base_group!r} to compare the groups with; groups: {', '.join(sorted(groups))}")
    skip = EXCLUDED_GROUPS.get(split, frozenset()) | {base_group}
    pairs: list[BenchPair] = []
    issues: list[DataIssue] = []
    for group, rel_paths in groups.items():
        if group in skip:
            continue
        pair_id = f"{split}-{group.replace(' ', '_')}"
        images_a, images_b, found = _resolve_sets(pair_id, root, rel_paths, groups[base_group])
        issues += found
        pairs.append(BenchPair(pair_id, split, group, base_group, f"{group} vs {base_group}",
                               images_a, images_b, source=path.name))
    return Benchmark(tuple(pairs), tuple(issues), (str(path),))


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8-sig").splitlines()
    except OSError as e:
        raise InputError(f"cannot read {path}: {e.strerror or e}") from e
    except UnicodeDecodeError as e:
        raise InputError(f"{path} is not UTF-8 text ({e.reason})") from e


def _read_csv(path: Path, *, required: set[str]) -> Iterable[tuple[int, dict]]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            missing = required - set(reader.fieldnames or [])
            if missing:
                raise InputError(f"{path}: missing column(s) {', '.join(sorted(missing))}; found {reader.fieldnames}")
            rows = [(lineno, row) for lineno, row in enumerate(reader, start=2)]
    except OSError as e:
        raise InputError(f"cannot read {path}: {e.strerror or e}") from e
    except (UnicodeDecodeError, csv.Error) as e:
        raise InputError(f"{path}: unreadable CSV ({e})") from e
    return rows


def _check_row(row) -> str:
    if not isinstance(row, dict):
        return f"expected a JSON object, got {type(row).__name__}"
    for key in ("set1", "set2"):
        if not isinstance(row.get(key), str) or not row[key].strip():
            return f"missing or empty {key!r}"
        images, folder = row.get(f"{key}_images"), row.get(f"{key}_folder")
        if images is None and folder is None:
            return f"needs {key}_images (a list of paths) or {key}_folder"
        if images is not None and not (isinstance(images, list) and all(isinstance(p, str) for p in images)):
            return f"{key}_images must be a list of path strings"
        if images is None and not isinstance(folder, str):
            return f"{key}_folder must be a path string"
    return ""


def _listed_images(row: dict, side: str, root: Path) -> list[str]:
    if row.get(f"{side}_images") is not None:
        return row[f"{side}_images"]
    folder = row[f"{side}_folder"]
    full = root / folder
    if _escapes(folder) or not full.is_dir():
        return [folder]  # reported by _resolve_sets as escaping or missing
    return sorted(p.relative_to(root).as_posix() for p in full.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)


def _split_name(path: Path, rel_paths: Sequence[str]) -> str:
    """A known split from the file name, its folder, or the images' first folder; else the file stem."""
    for candidate in (path.stem.lower(), path.parent.name.lower()):
        if candidate in KNOWN_SPLITS:
            return candidate
    firsts = {PurePosixPath(p).parts[0].lower() for p in rel_paths if len(PurePosixPath(p).parts) > 1}
    if len(firsts) == 1 and firsts <= set(KNOWN_SPLITS):
        return firsts.pop()
    return path.stem.lower()


def _split_order(split: str) -> int:
    return KNOWN_SPLITS.index(split) if split in KNOWN_SPLITS else len(KNOWN_SPLITS)


def _csv_root(path: Path, root: str | os.PathLike | None) -> Path:
    if root is not None:
        return Path(root)
    release = path.parent / "VisDiffBench"
    return release if release.is_dir() else path.parent


def _release_relative(csv_path: str) -> str:
    return _CSV_PREFIX.sub("", csv_path.strip().replace("\\", "/"))


def _escapes(rel: str) -> bool:
    """True for absolute paths and paths whose ``..`` parts leave the root (checked lexically,
    so symlinked image folders inside the root stay allowed)."""
    if os.path.isabs(rel) or PurePosixPath(rel.replace("\\", "/")).is_absolute():
        return True
    norm = os.path.normpath(rel.replace("\\", "/"))
    return norm == ".." or norm.startswith(".." + os.sep) or norm.startswith("../")


def _resolve_sets(pair_id: str, root: Path, rel_a: Sequence[str], rel_b: Sequence[str]):
    images_a, issues_a = _resolve_images(pair_id, "A", root, rel_a)
    images_b, issues_b = _resolve_images(pair_id, "B", root, rel_b)
    return images_a, images_b, issues_a + issues_b


def _resolve_images(pair_id: str, side: str, root: Path, rel_paths: Sequence[str]) -> tuple[tuple[Path, ...], list[DataIssue]]:
    kept: list[Path] = []
    seen: set[str] = set()
    issues: list[DataIssue] = []
    for rel in rel_paths:
        if _escapes(rel):
            issues.append(DataIssue("escapes_root", pair_id, f"set {side}: {rel!r} points outside the benchmark root {root}"))
            continue
        norm = os.path.normpath(rel)
        if norm in seen:
            issues.append(DataIssue("duplicate_image", pair_id, f"set {side}: {rel!r} is listed twice; kept once"))
            continue
        seen.add(norm)
        full = root / norm
        if not full.is_file():
            issues.append(DataIssue("missing_image", pair_id, f"set {side}: {full} does not exist"))
            continue
        kept.append(full)
    return tuple(kept), issues


def _drop_duplicate_pairs(pairs: Sequence[BenchPair]) -> tuple[list[BenchPair], list[DataIssue]]:
    """Keep the first pair per id and per (split, set names); report the rest."""
    by_id: dict[str, BenchPair] = {}
    by_names: dict[tuple[str, str, str], BenchPair] = {}
    unique: list[BenchPair] = []
    issues: list[DataIssue] = []
    for pair in pairs:
        names = (pair.split, pair.name_a.strip().lower(), pair.name_b.strip().lower())
        first = by_id.get(pair.id) or by_names.get(names)
        if first is not None:
            issues.append(DataIssue("duplicate_pair", pair.id,
                                    f"{pair.source}: duplicates {first.id} ({first.source}): {pair.name_a!r} vs {pair.name_b!r}; kept the first"))
            continue
        by_id[pair.id] = by_names[names] = pair
        unique.append(pair)
    return unique, issues
