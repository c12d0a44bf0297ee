"""``visdiff caption``: caption every image of a folder or CSV."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from visdiff.captioning import DEFAULT_BATCH_SIZE, caption
from visdiff.cli import app
from visdiff.cli._common import CacheDirOption, NoCacheOption, QuietOption, VerboseOption, cli_errors, stderr, stdout, set_verbosity
from visdiff.cli._models import BaseUrlOption, CaptionerOption, DeviceOption, ProfileOption
from visdiff.profiles import DEFAULT_PROFILE
from visdiff.progress import progress_enabled


@app.command("caption")
def caption_command(
    images: Annotated[Path, typer.Argument(help="A folder of images or a path,group_name CSV.")],
    profile: ProfileOption = None,
    captioner: CaptionerOption = None,
    prompt: Annotated[str | None, typer.Option(help="Caption prompt (Hugging Face and openai captioners).", rich_help_panel="Models")] = None,
    max_new_tokens: Annotated[int | None, typer.Option(min=1, help="Longest caption in tokens.", rich_help_panel="Models")] = None,
    device: DeviceOption = None,
    base_url: BaseUrlOption = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Images per captioning call.", rich_help_panel="Models")] = DEFAULT_BATCH_SIZE,
    csv_out: Annotated[Path | None, typer.Option("--csv", help="Write source,sha256,caption CSV to this file ('-' for stdout).", rich_help_panel="Output", dir_okay=False)] = None,
    jsonl_out: Annotated[Path | None, typer.Option("--jsonl", help="Write one JSON object per image to this file ('-' for stdout).", rich_help_panel="Output", dir_okay=False)] = None,
    cache_dir: CacheDirOption = None,
    no_cache: NoCacheOption = False,
    quiet: QuietOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Caption every image (cached by image content, model, prompt and settings)."""
    from visdiff.captioning import resolve_captioner
    from visdiff.profiles import get_profile

    set_verbosity(quiet, verbose)
    options = {k: v for k, v in {"prompt": prompt, "max_new_tokens": max_new_tokens, "device": device, "base_url": base_url}.items() if v is not None}
    with cli_errors():
        spec = captioner or get_profile(profile.value if profile else DEFAULT_PROFILE).captioner
        built = resolve_captioner(spec, **options)
        table = caption(images, captioner=built, batch_size=batch_size, cache_dir=cache_dir,
                        use_cache=not no_cache, show_progress=progress_enabled(quiet))
    for skipped in table.attrs["skipped"]:
        stderr.print(f"skipped {skipped['source']}: {skipped['reason']}", highlight=False)
    if csv_out is None and jsonl_out is None:
        for row in table.itertuples(index=False):
            stdout.print(f"{row.source}\t{row.caption}", highlight=False, markup=False, soft_wrap=True)
    if csv_out is not None:
        if str(csv_out) == "-":
            typer.echo(table.to_csv(index=False), nl=False)
        else:
            table.to_csv(csv_out, index=False)
    if jsonl_out is not None:
        lines = table.to_json(orient="records", lines=True, force_ascii=False)
        if str(jsonl_out) == "-":
            typer.echo(lines, nl=not lines.endswith("\n"))
        else:
            jsonl_out.write_text(lines, encoding="utf-8")
