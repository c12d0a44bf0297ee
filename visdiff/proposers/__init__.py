"""Proposers: turn two image sets (through their captions, images or scores) into
candidate differences, short phrases more true of A than of B.

Backends register in :data:`PROPOSERS` by name and are built from ``backend:model`` specs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from visdiff.io import ImageSet
from visdiff.registry import Registry


@dataclass(frozen=True)
class ProposalContext:
    """What a proposer may use. ``caption(image_set)`` returns {content hash: caption} for
    every image of the given set (cached); ``score(image_set, texts)`` returns the (n, m)
    scores of the ranking scorer (embeddings cached). Either is ``None`` when the pipeline
    has no captioner or scorer. Proposers that sample take ``seed``."""

    set_a: ImageSet
    set_b: ImageSet
    seed: int = 0
    caption: Callable[[ImageSet], dict[str, str]] | None = None
    score: Callable[[ImageSet, list[str]], np.ndarray] | None = None
    show_progress: bool | None = None


@runtime_checkable
class Proposer(Protocol):
    """Hypothesis proposal interface.

    ``propose`` gets a :class:`ProposalContext` (both image sets, and on demand their captions
    or a scorer) and returns candidate phrases describing A as opposed to B.
    """

    spec: str

    def propose(self, context: ProposalContext) -> list[str]: ...


PROPOSERS: Registry[Proposer] = Registry("proposer")


def create_proposer(spec: str, **options) -> Proposer:
    """Build a proposer from a spec such as ``llm:gpt-4o`` or ``vocabulary``."""
    _load_backends()
    return PROPOSERS.create(spec, **options)


def list_proposers() -> list[str]:
    _load_backends()
    return PROPOSERS.names()


def _load_backends() -> None:
    # Importing a backend module registers it; heavy imports happen only inside factories.
    # (Each backend module adds its import line here.)
    from visdiff.proposers import llm, vlm  # noqa: F401
    from visdiff.proposers import vocabulary  # noqa: F401
