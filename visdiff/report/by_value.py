"""Outputs of a comparison by value (``--score-col``, ``score=``): ``report.html`` (the
ranked table; per top row a scatter of value against the hypothesis's score with its
highest-scoring images; galleries of the images with the highest and lowest values),
``results.json`` and ``results.csv``. Inline and script-free like the two-set report."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from visdiff.atomic import write_text_atomic
from visdiff.errors import InputError
from visdiff.evidence import Gallery, ThumbnailCache, short_names, top_images
from visdiff.html_templates import environment
from visdiff.jsonable import to_jsonable
from visdiff.report.results import csv_safe, provenance
from visdiff.report.scatter import ScatterPlot, value_scatter
from visdiff.value_result import ValueResult

# Rows of the table that get a scatter and a gallery: the page stays readable.
TOP_ROWS = 5


@dataclass(frozen=True)
class ValueSection:
    rank: int
    row: dict
    plot: ScatterPlot
    gallery: Gallery


def render_value_report(result: ValueResult, *, images_per_gallery: int = 6) -> str:
    """The HTML text of the report of ``result``."""
    from visdiff import __version__

    thumbnails, names = ThumbnailCache(), short_names(result.image_set)
    evidence = dict(captions=result.captions, k=images_per_gallery, thumbnails=thumbnails, names=names)
    sections = [
        ValueSection(rank=j + 1, row=row, plot=value_scatter(result.values, result.scores[:, j]),
                     gallery=top_images(result.image_set, result.scores[:, j], **evidence))
        for j, row in enumerate(result.table.head(TOP_ROWS).to_dict("records"))
    ]
    return environment().get_template("by_value.html.j2").render(
        result=result, rows=result.table.to_dict("records"), sections=sections,
        highest=top_images(result.image_set, result.values, **evidence),
        lowest=top_images(result.image_set, result.values, lowest=True, **evidence),
        title=result.image_set.name or "images", alpha=result.table.attrs.get("alpha"), version=__version__,
        created_at=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    )


def write_value_outputs(result: ValueResult, out_dir: Path, *, images_per_gallery: int = 6) -> dict[str, Path]:
    """Write ``report.html``, ``results.json`` and ``results.csv`` of ``result`` into ``out_dir``."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"output path {out_dir} exists and is not a folder")
    payload = {**provenance(), "config": result.config, "timings": result.timings, "proposals": result.proposals,
               "images": [{"source": item.source, "sha256": item.key, "value": float(value)}
                          for item, value in zip(result.image_set.items, result.values)],
               "results": result.table.to_dict("records")}
    texts = {"html": render_value_report(result, images_per_gallery=images_per_gallery),
             "json": json.dumps(to_jsonable(payload), indent=2, allow_nan=False, ensure_ascii=False) + "\n",
             "csv": csv_safe(result.table).to_csv(index=False)}
    paths = {kind: out_dir / f"{'report' if kind == 'html' else 'results'}.{kind}" for kind in texts}
    for kind, text in texts.items():
        write_text_atomic(paths[kind], text)  # an OSError names the file
    return paths
