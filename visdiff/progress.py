"""Progress bars on a terminal (stderr), silence elsewhere or when asked.

Every long step (embedding images, captioning, LLM rounds, benchmark pairs) wraps its loop in
:func:`progress_bar`; callers pass ``enabled=progress_enabled(quiet)`` from the CLI, or leave
``enabled=None`` to show bars only when stderr is a terminal. Bars may nest (a benchmark's pair
bar around each pair's embedding bar; needs rich >= 14.1).
"""

from __future__ import annotations

import logging
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
    """Whether to draw progress bars: never with ``quiet``, otherwise only if stderr is a terminal."""
    stream = sys.stderr
    return not quiet and stream is not None and stream.isatty()


@contextmanager
def _log_handlers_follow_stderr(original_stderr) -> Iterator[None]:
    """Point log handlers that write to ``original_stderr`` at the current ``sys.stderr``.

    While bars are live, rich replaces ``sys.stderr`` with a proxy that prints above the bars;
    a handler still holding the real stream would write under them and the next redraw would
    erase the log line. Root and ``visdiff`` loggers are covered (``logging.basicConfig`` and
    library handlers live there); the streams are restored afterwards.
    """
    if sys.stderr is original_stderr:
        yield
        return
    moved = [
        h for name in ("", "visdiff") for h in logging.getLogger(name).handlers
        if type(h) is logging.StreamHandler and h.stream is original_stderr
    ]
    for handler in moved:
        handler.setStream(sys.stderr)
    try:
        yield
    finally:
        for handler in moved:
            handler.setStream(original_stderr)


@contextmanager
def progress_bar(description: str, total: int | None, *, enabled: bool | None = None) -> Iterator[ProgressTask]:
    """A rich progress bar on stderr; ``enabled=None`` shows it only on a terminal.

    Parameters
    ----------
    description : str
        What is being counted, e.g. ``"captioning images"``.
    total : int or None
        Number of steps, or None when unknown (the bar then pulses).
    enabled : bool, optional
        Force the bar on or off; None means :func:`progress_enabled`.
    """
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
    original_stderr = sys.stderr
    with progress, _log_handlers_follow_stderr(original_stderr):
        yield ProgressTask(progress, progress.add_task(description, total=total))
