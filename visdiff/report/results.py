"""Machine-readable results: ``results.json`` (schema below) and ``results.csv``.

``results.json`` schema, version 1 (``docs/results-schema.md`` has the full description)::

    {
      "schema_version": 1,
      "visdiff_version": "0.1.0",
      "created_at": "2026-11-26T20:40:56+00:00",     # UTC, ISO 8601
      "config": {...},                               # settings and model ids (secrets redacted)
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

import re
from dataclasses import asdict
from datetime import datetime, timezone

import numpy as np
import pandas as pd

from visdiff.image_sets import ImageSet
from visdiff.jsonable import to_jsonable
from visdiff.redaction import REDACTED, redact_text
from visdiff.result import CompareResult, MultiCompareResult, stack_by_set

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


def ranked_table(table: pd.DataFrame) -> pd.DataFrame:
    """The ranked table with a 1-based ``rank`` column first.

    With a ``direction`` column (``compare(both_directions=True)``: rows of phrases more true of
    A, then rows more true of B) ranks count within each direction.
    """
    table = table.reset_index(drop=True)
    if "direction" in table.columns:
        rank = table.groupby("direction", sort=False).cumcount() + 1
    else:
        rank = range(1, len(table) + 1)
    return table.assign(rank=rank)[["rank", *table.columns]]


def _set_record(image_set: ImageSet) -> dict:
    return {
        "name": image_set.name,
        "n_images": len(image_set),
        "images": [{"key": item.key, "source": item.source} for item in image_set.items],
        "skipped": [asdict(s) for s in image_set.skipped],
    }


def provenance() -> dict:
    """What made a results document, and when: ``visdiff_version`` and ``created_at`` (UTC,
    ISO 8601), first in ``results.json`` and in every ``--json`` document."""
    from visdiff import __version__

    return {"visdiff_version": __version__, "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def results_payload(result: CompareResult | MultiCompareResult) -> dict:
    """The ``results.json`` document (schema version 1) for ``result``; for several sets, one
    entry per set in ``comparisons``, each as the document of a two-set run."""
    header = {"schema_version": SCHEMA_VERSION, **provenance()}
    if isinstance(result, MultiCompareResult):
        return to_jsonable({
            **header,
            "config": settings_record(result.config),
            "timings": result.timings,
            "comparisons": [{"set": name, **_comparison_record(one)} for name, one in result.results.items()],
        })
    return to_jsonable({**header, **_comparison_record(result)})


def _comparison_record(result: CompareResult) -> dict:
    return {
        "config": settings_record(result.config),
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
    """The ranked table as CSV text, one row per hypothesis, ``rank`` first, formula-safe; for
    several sets, every set's rows with its name in a first column ``set``."""
    if isinstance(result, MultiCompareResult):
        table = stack_by_set({name: ranked_table(one.table) for name, one in result.results.items()})
    else:
        table = ranked_table(result.table)
    return csv_safe(table).to_csv(index=False)
