"""``visdiff embed``: fill the embedding cache for image sets, ahead of ranking them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from visdiff.cli import app
from visdiff.cli.options import run_command
from visdiff.cli.output import JsonOption, check_outputs, stdout, write_output
from visdiff.sources import existing_path
from visdiff.jsonable import to_jsonable
from visdiff.options import RunOptions

SEAM_NAMES = {"embed_read": "read", "embed_decode": "decode on the device", "embed_map": "model",
              "embed_write": "write"}


@run_command(app, "embed", "profile", "scorer", "clip", "device", "precision", "full_decode", "batch_size", "engine", "engine_address",
             "shard_images", "shard_seconds", "cache_dir")
def embed_command(
    sets: Annotated[list[Path], typer.Argument(help="Folders of images, tables of image paths or bytes, or WebDataset tar shards "
                                                    "(one .tar, or a quoted brace pattern 'shards-{000..009}.tar').")],
    options: RunOptions,
    json_out: JsonOption = None,
) -> None:
    """Embed image sets into the cache (committed in shards: rerun a killed run to resume)."""
    check_outputs(json_out)  # before hours of embedding, not after
    for path in sets:
        existing_path(path)
    from visdiff.pipeline import embed  # the pipeline (torch) only when a command runs, not for --help

    summary = embed(sets, options)
    if json_out is not None:
        write_output(json_out, json.dumps(to_jsonable(summary), indent=2) + "\n")
        if str(json_out) == "-":
            return
    for path, embedded in zip(sets, summary["sets"]):
        stdout.print(f"{path}: {embedded['images']} image(s), {len(embedded['skipped'])} skipped",
                     highlight=False, soft_wrap=True)
    counts = summary["embeddings"]
    seams = ", ".join(f"{name} {summary['timings'].get(seam, 0.0):.2f} s" for seam, name in SEAM_NAMES.items())
    stdout.print(f"{counts['encoded']} encoded, {counts['cached']} from the cache, {counts['failed']} failed, "
                 f"{counts['shards']} shard(s) written ({seams}) with {summary['scorer']}", highlight=False,
                 soft_wrap=True)
