"""Seconds per pipeline stage, each stage counting only its own time.

Stages nest (a proposer asks the captioning stage for captions, which may load the
captioner): while an inner stage runs, the outer one's clock stops, so the recorded
seconds add up to the wall time and no stage is counted twice.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager


class Timings:
    """Exclusive seconds per stage name; shared by the stages of one run."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._open: list[str] = []
        self._since = 0.0

    def _charge(self, now: float) -> None:
        if self._open:
            stage = self._open[-1]
            self.seconds[stage] = self.seconds.get(stage, 0.0) + now - self._since
        self._since = now

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Count the time inside the block as ``name`` (minus the stages nested in it)."""
        self._charge(time.perf_counter())
        self._open.append(name)
        try:
            yield
        finally:
            self._charge(time.perf_counter())
            self._open.pop()

    def add(self, name: str, seconds: float) -> None:
        """Count ``seconds`` spent elsewhere (by remote workers, say) as ``name``."""
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds

    def reset(self) -> None:
        """Start counting from nothing (between the units of a sweep or benchmark)."""
        if self._open:
            raise RuntimeError(f"cannot reset the timings inside stage {self._open[-1]!r}")
        self.seconds = {}

    def as_dict(self) -> dict[str, float]:
        return dict(self.seconds)
