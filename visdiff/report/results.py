"""Machine-readable results: ``results.json`` (schema below) and ``results.csv``.

``results.json`` schema, version 1 (``docs/results-schema.md`` has the full description)::

    {
      "schema_version": 1,
      "visdiff_version": "0.1.0",
      "created_at": "2026-11-26T20:40:56+00:00",     # UTC, ISO 8601
      "command_line": "visdiff compare data/dogs data/birds --out out",  # secrets masked
      "versions": {"python": "3.11.9", "torch": "2.4.1", ...},
      "config": {...},                               # settings and model ids (secrets redacted)
      "settings": {"stages": {...}, "proposing": {...}, "statistics": {...}, "runtime": {...}},
                                                     # config and attrs by group, unset (None) left out
      "timings": {"stage": seconds, ...},
      "attrs": {...},                                # table.attrs: alpha, scorer, ...
      "sets": {
        "a": {"name": str, "n_images": int,
              "images": [{"key": sha256, "source": str}, ...],
              "skipped": [{"source": str, "reason": str}, ...]},
        "b": {...}
      },
      "proposals": [str, ...],                       # what the proposer suggested
      "results": [{"rank": 1, "hypothesis": str, "auroc": float, ...}, ...],
      "scores": {"a": [[float, ...], ...], "b": ...},  # rows: sets.*.images, columns: results
      "captions": {"a": {key: caption}, "b": {...}},
      "proposal_rounds": [{"direction": "A", "round": 1, "proposer": str,
                           "images_a": [{"key", "source"}], "images_b": [...],
                           "captions_a": {key: caption}, "captions_b": {...},
                           "requests": [{"messages": [...], "params": {...}, "answer": str,
                                         "phrases": [str], "dropped": [{"line", "reason"}]}]}]
                           # --pair-by adds "pair_by", "pairs": [{"key", "a", "b"}], "paired_prompt";
                           # --refine appends rounds with "kind": "refine", "hypotheses_shown",
                           # "new_phrases", "best_auroc_before", "best_auroc_after", "llm_calls"
    }

With several sets (``visdiff.compare_many``), the document has the run's ``config`` and
``timings`` and ``comparisons``: one entry per set, ``{"set": name, ...}`` with the keys above
from ``config`` to ``proposal_rounds`` (set ``a`` is the set, ``b`` the union of the others).

Non-finite numbers (a constant score column gives a NaN p-value) are written as ``null``,
so the file is strict JSON.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from dataclasses import asdict
from datetime import datetime, timezone

import numpy as np
import pandas as pd

from visdiff.image_sets import ImageSet
from visdiff.jsonable import to_jsonable
from visdiff.redaction import REDACTED, redact_text
from visdiff.result import CompareResult, MultiCompareResult, ranked_table, stack_by_set
from visdiff.runlog import library_versions

SCHEMA_VERSION = 1
# A setting is secret when its name's last word is one of these ("openai_api_key", "hf_token"),
# not merely when it contains one ("max_tokens" stays).
SECRET_WORDS = frozenset({"key", "apikey", "token", "secret", "password", "authorization"})


def is_secret_name(name: str) -> bool:
    words = re.split(r"[^a-z0-9]+", str(name).lower().strip("_- "))
    return words[-1] in SECRET_WORDS


def settings_record(settings: dict) -> dict:
    """``settings`` as JSON types with secret-looking values replaced by ``"<redacted>"``, at any depth.

    Reports get shared; the pipeline never puts API keys in the config, and this makes sure.
    """
    def redact(value):
        if isinstance(value, dict):
            return {k: REDACTED if is_secret_name(k) and v is not None else redact(v) for k, v in value.items()}
        if isinstance(value, list):
            return [redact(v) for v in value]
        if isinstance(value, str):
            return redact_text(value)  # credentials inside a URL
        return value

    return redact(to_jsonable(dict(settings)))


def masked_command_line(argv: list[str]) -> str:
    """``argv`` as one shell line, the program by its file name, with the value of every
    option named like a secret (``--api-key X``, ``--hf-token=X``) and credentials inside URLs
    replaced by ``"<redacted>"``."""
    words, secret_next = [os.path.basename(argv[0])] if argv else [], False
    for word in argv[1:]:
        option, equals, _ = word.partition("=")
        if secret_next:
            word = REDACTED
        elif word.startswith("-") and equals and is_secret_name(option):
            word = f"{option}={REDACTED}"
        secret_next = word.startswith("-") and not equals and is_secret_name(word)
        words.append(redact_text(word))
    return shlex.join(words)


# Which group of the settings a (dotted) setting belongs to: its longest listed prefix decides.
SETTING_GROUPS = {
    "stages": ("profile", "captioner", "captioner_cache_id", "scorer", "proposer.spec", "options.profile",
               "options.captioner", "options.proposer", "options.scorer", "options.llm", "options.base_url",
               "options.prompts", "options.caption_beams", "options.caption_max_tokens", "options.caption_temperature"),
    "proposing": ("proposer", "n_proposals", "contrast_images", "options.rounds", "options.samples_per_set",
                  "options.seed", "options.temperature", "options.max_tokens", "options.system_message",
                  "options.llm_seed", "options.both_directions", "options.pair_by", "options.refine"),
    "statistics": ("alpha", "holdout", "merge", "n_a", "n_b", "set", "against", "sets", "shared_images",
                   "options.alpha", "options.holdout", "options.merge", "options.merge_threshold"),
    "runtime": ("captions", "embeddings"),
    "usage": ("llm_usage",),
}
OTHER_SETTINGS = "other"
SETTING_GROUP_ORDER = (*SETTING_GROUPS, OTHER_SETTINGS)
_GROUP_OF = {name: group for group, names in SETTING_GROUPS.items() for name in names}
# Lists of unreadable inputs in the config/attrs: the page lists them in their own section.
SKIPPED_KEYS = frozenset({"skipped_a", "skipped_b"})


def flat_settings(settings: dict, prefix: str = "") -> dict:
    """JSON-typed ``settings`` with nested dicts as dotted names (``proposer.spec``), unset
    (None) values left out."""
    flat = {}
    for key, value in settings.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flat_settings(value, prefix=f"{name}."))
        elif value is not None:
            flat[name] = value
    return flat


def setting_group(name: str) -> str:
    """The group of dotted setting ``name``: that of its longest prefix in :data:`SETTING_GROUPS`."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        group = _GROUP_OF.get(".".join(parts[:end]))
        if group is not None:
            return group
    return OTHER_SETTINGS


def grouped_settings(config: dict, attrs: dict) -> dict[str, dict]:
    """The run's settings (``config``, then ``attrs`` not already in it; skipped inputs left
    to their own section) as JSON types, secrets redacted, by group in :data:`SETTING_GROUP_ORDER`,
    each ``{dotted name: value}`` without unset values; empty groups left out."""
    config, attrs = settings_record(config), settings_record(attrs)
    shown = {k: v for k, v in config.items() if k not in SKIPPED_KEYS}
    shown.update({k: v for k, v in attrs.items() if k not in SKIPPED_KEYS and k not in config})
    groups: dict[str, dict] = {group: {} for group in SETTING_GROUP_ORDER}
    for name, value in flat_settings(shown).items():
        groups[setting_group(name)][name] = value
    return {group: values for group, values in groups.items() if values}


def _set_record(image_set: ImageSet) -> dict:
    """The set's ``name`` (folder, table selection or given name), size, images and skipped inputs."""
    return {
        "name": image_set.name,
        "n_images": len(image_set),
        "images": [{"key": item.key, "source": item.source} for item in image_set.items],
        "skipped": [asdict(s) for s in image_set.skipped],
    }


def provenance() -> dict:
    """What made a results document, and when: ``visdiff_version``, ``created_at`` (UTC,
    ISO 8601), the ``command_line`` of this process (secrets masked) and the ``versions`` of
    Python and the libraries that shape results; first in ``results.json`` and in every
    ``--json`` document."""
    from visdiff import __version__

    return {"visdiff_version": __version__, "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "command_line": masked_command_line(sys.argv), "versions": library_versions()}


def results_payload(result: CompareResult | MultiCompareResult) -> dict:
    """The ``results.json`` document (schema version 1) for ``result``; for several sets, one
    entry per set in ``comparisons``, each as the document of a two-set run."""
    header = {"schema_version": SCHEMA_VERSION, **provenance()}
    if isinstance(result, MultiCompareResult):
        return to_jsonable({
            **header,
            "config": settings_record(result.config),
            "settings": grouped_settings(result.config, {}),
            "timings": result.timings,
            "comparisons": [{"set": name, **_comparison_record(one)} for name, one in result.results.items()],
        })
    return to_jsonable({**header, **_comparison_record(result)})


def _comparison_record(result: CompareResult) -> dict:
    return {
        "config": settings_record(result.config),
        "settings": grouped_settings(result.config, result.table.attrs),
        "timings": result.timings,
        "attrs": settings_record(result.table.attrs),
        "sets": {"a": _set_record(result.set_a), "b": _set_record(result.set_b)},
        "proposals": list(result.proposals),
        "results": ranked_table(result.table).to_dict("records"),
        "scores": {"a": np.asarray(result.scores_a), "b": np.asarray(result.scores_b)},
        "captions": {"a": result.captions_a, "b": result.captions_b},
        "proposal_rounds": result.proposal_rounds,
    }


# A cell starting with one of these is a formula to a spreadsheet (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(table: pd.DataFrame) -> pd.DataFrame:
    """A copy for CSV: lists of texts (a hypothesis's merged variants) joined with ``"; "``, and
    text cells that would run as spreadsheet formulas (starting with ``= + - @``, a tab or a
    carriage return) prefixed with an apostrophe, as spreadsheets expect."""
    def cell(value):
        if isinstance(value, list):
            value = "; ".join(map(str, value))
        return f"'{value}" if isinstance(value, str) and value.startswith(_FORMULA_START) else value

    safe = table.copy()
    for column in safe.columns:
        if pd.api.types.is_object_dtype(safe[column]) or pd.api.types.is_string_dtype(safe[column]):
            safe[column] = safe[column].map(cell)
    return safe


def results_csv(result: CompareResult | MultiCompareResult) -> str:
    """The ranked table as CSV text, one row per hypothesis, ``rank`` first, formula-safe, with
    the names of the sets compared in last columns ``set_a`` and ``set_b`` (a CSV has no place
    for a note above its header); for several sets, every set's rows with its name in a first
    column ``set``."""
    if isinstance(result, MultiCompareResult):
        table = stack_by_set({name: ranked_table(one.table) for name, one in result.results.items()})
    else:
        table = ranked_table(result.table).assign(set_a=result.set_a.name, set_b=result.set_b.name)
    return csv_safe(table).to_csv(index=False)
