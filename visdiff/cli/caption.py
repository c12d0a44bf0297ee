"""``visdiff caption``: caption every image of a folder or CSV."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from visdiff.captioning import DEFAULT_BATCH_SIZE, build_captioner
from visdiff.cli import app
from visdiff.cli.options import (
    INPUT, GroupColumnOption, SetArgument, WhereOption, parse_where, run_command,
)
from visdiff.sources import load_image_set
from visdiff.jsonable import to_jsonable
from visdiff.cli.output import check_outputs, stdout, write_output
from visdiff.options import RunOptions
from visdiff.tables import DEFAULT_GROUP_COLUMN
from visdiff.report.results import csv_safe


@run_command(app, "caption", "profile", "captioner", "device", "base_url", "cache_dir", "no_cache",
             "prompts", "caption_beams", "caption_temperature", "llm_concurrency")
def caption_command(
    images: SetArgument,
    options: RunOptions,
    group: Annotated[str | None, typer.Option("--group", help="Value of the group column to take from a table.", rich_help_panel=INPUT)] = None,
    group_col: GroupColumnOption = DEFAULT_GROUP_COLUMN,
    where: WhereOption = None,
    prompt: Annotated[str | None, typer.Option(help="Caption prompt (Hugging Face and openai captioners).", rich_help_panel="Models")] = None,
    max_new_tokens: Annotated[int | None, typer.Option(min=1, help="Longest caption in tokens.", rich_help_panel="Models")] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Images per captioning call.", rich_help_panel="Models")] = DEFAULT_BATCH_SIZE,
    csv_out: Annotated[Path | None, typer.Option("--csv", help="Write source,sha256,caption CSV to this file ('-' for stdout).", rich_help_panel="Output", dir_okay=False)] = None,
    jsonl_out: Annotated[Path | None, typer.Option("--jsonl", help="Write one JSON object per image to this file ('-' for stdout).", rich_help_panel="Output", dir_okay=False)] = None,
) -> None:
    """Caption every image (cached by image content, model, prompt and settings)."""
    from visdiff.pipeline import caption  # the pipeline (torch) only when a command runs, not for --help
    from visdiff.stages import RunStages, caption_settings

    check_outputs(csv_out, jsonl_out)
    own = {k: v for k, v in {"prompt": prompt, "max_new_tokens": max_new_tokens}.items() if v is not None}
    stages = RunStages(options, captions_only=True)  # specs and --cache-dir are usage errors, before any file is read
    spec = options.captioner_spec()
    captioner = build_captioner(spec, device=options.device, base_url=options.base_url,
                                **{**caption_settings(options, spec, llm_pool=stages.llm_pool), **own}) if own else None
    image_set = load_image_set(images, group=group, group_column=group_col, where=parse_where(where))
    table = caption(image_set, options.replace(caption_batch_size=batch_size), captioner=captioner)
    if csv_out is None and jsonl_out is None:
        for row in table.itertuples(index=False):
            stdout.print(f"{row.source}\t{row.caption}", highlight=False, markup=False, soft_wrap=True)
    if csv_out is not None:
        write_output(csv_out, csv_safe(table).to_csv(index=False))
    if jsonl_out is not None:
        # json, not pandas' to_json: that writes every "/" of a path as "\/".
        write_output(jsonl_out, "".join(json.dumps(to_jsonable(row), ensure_ascii=False) + "\n"
                                        for row in table.to_dict("records")))
