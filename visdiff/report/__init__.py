"""Outputs of a ``compare`` run that people and programs read.

:func:`write_outputs` writes ``report.html`` (self-contained page: settings, ranked table, and
per hypothesis the top images of A and B with score distributions), ``results.json``
(schema: :mod:`visdiff.report.results`, ``docs/results-schema.md``) and ``results.csv``.
"""

from __future__ import annotations

import json
from pathlib import Path

from visdiff.atomic import write_text_atomic
from visdiff.errors import InputError
from visdiff.report.html import render_report
from visdiff.report.results import SCHEMA_VERSION, results_csv, results_payload
from visdiff.result import CompareResult, MultiCompareResult

__all__ = ["SCHEMA_VERSION", "render_report", "results_csv", "results_payload", "write_outputs"]


def write_outputs(result: CompareResult | MultiCompareResult, out_dir: Path, *, top_images: int = 6) -> dict[str, Path]:
    """Write ``report.html``, ``results.json`` and ``results.csv`` into ``out_dir``.

    Parameters
    ----------
    result : CompareResult or MultiCompareResult
        A finished run; ``scores_a``/``scores_b`` columns follow ``result.table`` rows. Of
        several sets: one page section, one JSON entry per set, and CSV rows with the set's name.
    out_dir : Path
        Created if missing; existing files of these names are replaced atomically.
    top_images : int
        How many top-scoring images of A and of B the page shows per hypothesis.

    Returns
    -------
    dict mapping ``"html"``, ``"json"``, ``"csv"`` to the written paths.
    """
    if top_images < 0:
        raise ValueError(f"top_images must be >= 0, got {top_images}")
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"output path {out_dir} exists and is not a folder")
    html = render_report(result, top_images_per_set=top_images)
    paths = {"html": out_dir / "report.html", "json": out_dir / "results.json", "csv": out_dir / "results.csv"}
    texts = {"json": json.dumps(results_payload(result), indent=2, allow_nan=False, ensure_ascii=False) + "\n",
             "csv": results_csv(result), "html": html}
    for kind, text in texts.items():
        # A full disk or a folder gone read-only mid-run: an OSError naming the file (exit 1).
        write_text_atomic(paths[kind], text)
    return paths
