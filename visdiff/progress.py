"""Progress bars on a terminal (stderr), silence elsewhere or when asked."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class ProgressTask:
    """Handle for one progress bar; ``advance`` is a no-op when progress is off."""

    def __init__(self, progress: Progress | None, task_id) -> None:
        self._progress = progress
        self._task_id = task_id

    def advance(self, n: int = 1) -> None:
        if self._progress is not None:
            self._progress.advance(self._task_id, n)


def progress_enabled(quiet: bool = False) -> bool:
    return not quiet and sys.stderr.isatty()


@contextmanager
def progress_bar(description: str, total: int | None, *, enabled: bool | None = None) -> Iterator[ProgressTask]:
    """A rich progress bar on stderr; ``enabled=None`` shows it only on a terminal."""
    if enabled is None:
        enabled = progress_enabled()
    if not enabled:
        yield ProgressTask(None, None)
        return
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=False,
    )
    with progress:
        yield ProgressTask(progress, progress.add_task(description, total=total))
