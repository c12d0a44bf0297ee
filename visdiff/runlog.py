"""Resumable runs over many units (benchmark pairs, sweep values): one results folder, one
JSON line per finished unit, fsynced as it finishes, and a lock so that one run writes at a time.

A rerun reads the lines already there and skips their units; bytes after the last newline are a
torn line (the run died while writing it): they are cut off and that unit is redone.
"""

from __future__ import annotations

import json
import logging
import os
import platform
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from filelock import FileLock, Timeout

from visdiff.atomic import write_text_atomic
from visdiff.errors import InputError
from visdiff.jsonable import to_jsonable

log = logging.getLogger(__name__)

LOCK_FILE = ".lock"


@contextmanager
def exclusive(folder: Path, what: str) -> Iterator[None]:
    """Hold a lock on the results folder: a second run into it is refused at once (``what``
    names the command in the message), so no unit is run or written twice."""
    lock = FileLock(folder / LOCK_FILE)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise InputError(f"another {what} is writing to {folder}; wait for it to finish or use another --out") from None
    try:
        yield
    finally:
        lock.release()


def check_settings_file(path: Path, wanted: dict, *, what: str, defaults: dict | None = None) -> None:
    """The settings of the run that made the folder (``path``) must be ``wanted``: a new folder
    records them (with library versions); a folder of another configuration is refused with
    the dotted names of the settings that differ, so one results file never mixes runs.

    ``defaults`` (shaped like ``wanted``) gives the value of a setting that a folder made
    before the setting existed does not record: such a folder ran with the default, so it
    resumes unless ``wanted`` asks for something else.
    """
    wanted = to_jsonable(wanted)
    if not path.exists():
        write_text_atomic(path, json.dumps({**wanted, "versions": library_versions(), "created_at": now()}, indent=2) + "\n")
        return
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise InputError(f"{path} is unreadable ({e}); use another --out folder") from e
    differs = _differences({k: found.get(k) for k in wanted}, wanted, to_jsonable(defaults or {}))
    if differs:
        raise InputError(f"{path.parent} holds {what} of other settings (differs in: {', '.join(differs)}); "
                         "use another --out folder to keep results of one configuration together")


_ABSENT = object()


def _differences(found, wanted, defaults, prefix: str = "") -> list[str]:
    """Dotted names of the settings where ``found`` (a setting it lacks read from ``defaults``)
    and ``wanted`` differ."""
    if not isinstance(found, dict) or not isinstance(wanted, dict):
        return [] if found == wanted else [prefix.rstrip(".")]
    defaults = defaults if isinstance(defaults, dict) else {}
    names = []
    for key in sorted(set(found) | set(wanted)):
        value = found.get(key, defaults.get(key, _ABSENT))
        names += _differences(None if value is _ABSENT else value, wanted.get(key), defaults.get(key), f"{prefix}{key}.")
    return names


def read_records(path: Path, *, key: str, required: tuple[str, ...], kind: str, repair: bool = True) -> list[dict]:
    """Records in a results file, first line per ``key``; torn last line cut (see module doc)
    unless ``repair`` is false (a dry run reads, never writes).

    A complete line that is not a JSON object with the ``required`` fields means the file was
    edited or is not ours: ``InputError`` (``kind`` names the records in the message).
    """
    if not path.exists():
        return []
    data = path.read_bytes()
    complete_bytes = data.rfind(b"\n") + 1  # everything after the last newline is torn
    records: list[dict] = []
    seen: set[str] = set()
    for number, line in enumerate(data[:complete_bytes].split(b"\n")[:-1], start=1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise InputError(f"{path}:{number} is not a JSON record ({e.msg}); fix or move the file") from e
        if not isinstance(record, dict) or any(field not in record for field in required):
            raise InputError(f"{path}:{number} is not a {kind} record")
        if record[key] in seen:
            log.warning("%s:%d repeats %s %s; using its first record", path, number, key, record[key])
            continue
        seen.add(record[key])
        records.append(record)
    if complete_bytes < len(data) and repair:
        log.warning("%s: cutting a torn last line (%d bytes) left by an interrupted run", path, len(data) - complete_bytes)
        with open(path, "r+b") as f:
            f.truncate(complete_bytes)
            f.flush()
            os.fsync(f.fileno())
    return records


# Columns of the ranked table kept per hypothesis in a results line.
# With --holdout the proposal split's figures follow; with merging, each row's merged variants.
HYPOTHESIS_COLUMNS = ("hypothesis", "direction", "auroc", "auroc_low", "auroc_high", "mean_a", "mean_b", "effect_size",
                      "p_greater", "q_value", "significant", "t", "p_welch", "correct_delta", "favours",
                      "constant", "auroc_proposal", "p_greater_proposal", "q_value_proposal", "significant_proposal", "merged")


def hypothesis_rows(table, top: int | None = None) -> list[dict]:
    """The ranked table's rows (the first ``top``, or all) as results-line records."""
    columns = [c for c in HYPOTHESIS_COLUMNS if c in table.columns]
    return table[columns].head(top if top is not None else len(table)).to_dict("records")


def append_record(file, record: dict) -> None:
    """Append one JSON line and force it to disk before the next unit starts."""
    file.write(json.dumps(to_jsonable(record), ensure_ascii=False, allow_nan=False) + "\n")
    file.flush()
    os.fsync(file.fileno())


def library_versions() -> dict[str, str]:
    """Versions of Python and of the libraries that shape results."""
    from visdiff import __version__

    versions = {"python": platform.python_version(), "visdiff": __version__}
    for dist in ("torch", "open_clip_torch", "transformers", "sentence-transformers", "numpy", "scipy", "openai"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return versions


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
