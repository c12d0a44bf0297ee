"""Proposers: turn two image sets (through their captions, images or scores) into
candidate differences, short phrases more true of A than of B.

Backends register in :data:`PROPOSERS` by name and are built from ``backend:model`` specs.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from visdiff.registry import Registry


@runtime_checkable
class Proposer(Protocol):
    """Hypothesis proposal interface.

    ``propose`` gets a :class:`ProposalContext` (both image sets, and on demand their captions
    or a scorer) and returns candidate phrases describing A as opposed to B.
    """

    spec: str

    def propose(self, context) -> list[str]: ...


PROPOSERS: Registry[Proposer] = Registry("proposer")
