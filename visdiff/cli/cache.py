"""``visdiff cache info|compact|clear``."""

from __future__ import annotations

from typing import Annotated

import typer

from visdiff.cli import app
from visdiff.cli.options import run_command
from visdiff.cli.output import stdout
from visdiff.cache_root import CacheRoot
from visdiff.errors import InputError
from visdiff.image_sets import display_path
from visdiff.options import RunOptions

cache_app = typer.Typer(help="Inspect or clear the embedding, caption and LLM caches.", no_args_is_help=True)
app.add_typer(cache_app, name="cache")


def existing_cache_root(options: RunOptions) -> CacheRoot:
    """The cache root, refused when it names something that is not a folder: a file there said
    "nothing cached" and exit 0, where every other command says the cache dir cannot be used."""
    root = options.cache_root()
    if root.path is not None and root.path.exists() and not root.path.is_dir():
        raise InputError(f"cache dir {display_path(root.path)} is not a folder; pass another --cache-dir")
    return root


@run_command(cache_app, "info", "cache_dir")
def info_command(options: RunOptions) -> None:
    """Show where the cache is and what it holds."""
    root = existing_cache_root(options)
    stdout.print(f"cache dir: {root.path}", highlight=False, soft_wrap=True)
    stores = root.info()
    if not stores:
        stdout.print("nothing cached")
    for s in stores:
        held = f"{s.entries} embeddings in {s.shards} shard(s)" if s.kind == "embeddings" else f"{s.entries} file(s)"
        stdout.print(f"{s.kind}/{s.store}: {held}, {s.bytes / 1e6:.2f} MB", highlight=False, soft_wrap=True)


@run_command(cache_app, "compact", "cache_dir", "shard_images")
def compact_command(options: RunOptions) -> None:
    """Merge small embedding shards into shards of up to --shard-images rows (faster index loads)."""
    root = existing_cache_root(options)
    stores = root.compact(options.shard_images)
    if not stores:
        stdout.print("nothing cached")
    for store, before, after in stores:
        stdout.print(f"embeddings/{store}: {before} -> {after} shard(s)", highlight=False, soft_wrap=True)


@run_command(cache_app, "clear", "cache_dir")
def clear_command(
    options: RunOptions,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete everything in the cache folder."""
    root = existing_cache_root(options)
    if not yes and not typer.confirm(f"delete everything under {root.path}?"):
        raise typer.Exit(code=1)
    freed = root.clear()
    stdout.print(f"cleared {root.path} ({freed / 1e6:.2f} MB)", highlight=False)
