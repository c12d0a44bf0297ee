"""``visdiff cache info|clear``."""

from __future__ import annotations

from typing import Annotated

import typer

from visdiff.cli import app
from visdiff.cli._common import CacheDirOption, cli_errors, stdout
from visdiff.config import default_cache_dir
from visdiff.embeddings.cache import cache_info, clear_cache

cache_app = typer.Typer(help="Inspect or clear the embedding, caption and LLM caches.", no_args_is_help=True)
app.add_typer(cache_app, name="cache")


@cache_app.command("info")
def info_command(cache_dir: CacheDirOption = None) -> None:
    """Show where the cache is and what it holds."""
    root = cache_dir or default_cache_dir()
    stdout.print(f"cache dir: {root}", highlight=False, soft_wrap=True)
    stores = cache_info(root)
    if not stores:
        stdout.print("no cached embeddings")
    for s in stores:
        stdout.print(
            f"{s.store}: {s.rows} embeddings in {s.shards} shard(s), {s.bytes / 1e6:.2f} MB",
            highlight=False, soft_wrap=True,
        )


@cache_app.command("clear")
def clear_command(
    cache_dir: CacheDirOption = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete everything in the cache folder."""
    root = cache_dir or default_cache_dir()
    if not yes and not typer.confirm(f"delete everything under {root}?"):
        raise typer.Exit(code=1)
    with cli_errors():
        freed = clear_cache(root)
    stdout.print(f"cleared {root} ({freed / 1e6:.2f} MB)", highlight=False)
