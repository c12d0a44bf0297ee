"""Proposers: turn two image sets (through their captions, images or scores) into
candidate differences, short phrases more true of A than of B.

Backends are declared in :data:`PROPOSERS` by name, with their capabilities, and built from
``backend:model`` specs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from visdiff.registry import Registry

if TYPE_CHECKING:  # annotations only: listing the backends must not import pandas (image sets)
    from visdiff.captioning import Captioning
    from visdiff.embeddings.scoring import Scoring
    from visdiff.image_sets import ImageSet


@dataclass(frozen=True)
class ProposalContext:
    """What a proposer works from: both image sets, the run's captioning stage (captions of any
    image set, cached) and its scoring stage (scores of any image set against texts, with
    the ranking scorer; embeddings cached). Proposers that sample take ``seed``. Proposers
    that work in rounds append a record of each to ``rounds`` (provenance for results).
    ``pairs`` (with ``--pair-by``): positions in ``set_a`` and ``set_b`` of images sharing a
    key, ``pair_by`` that key's column; the llm proposer shows them side by side."""

    set_a: ImageSet
    set_b: ImageSet
    captioning: Captioning
    scoring: Scoring
    seed: int = 0
    show_progress: bool | None = None
    rounds: list[dict] = field(default_factory=list)
    pairs: tuple[tuple[int, int], ...] = ()
    pair_by: str | None = None


@runtime_checkable
class Proposer(Protocol):
    """Hypothesis proposal interface.

    ``propose`` gets a :class:`ProposalContext` and returns candidate phrases describing A as
    opposed to B; ``describe`` returns its spec, settings and what it spent (LLM requests)
    for result records, never secrets.
    """

    spec: str

    def propose(self, context: ProposalContext) -> list[str]: ...

    def describe(self) -> dict: ...


# Capabilities: ``chat`` proposers talk to a chat model: their factories take the LLM run
# options (``base_url``, ``rounds``, ``samples_per_set``, prompts and request settings) and the
# run's ``llm_pool``, and ``--llm`` picks their model; ``paired`` ones are shown paired images side by side
# (``--pair-by``); ``reads_captions`` ones read captions (the others never run the captioner);
# ``sampled`` ones (not chat) take ``rounds``, ``samples_per_set``, ``n_hypotheses`` and ``device``.
PROPOSERS: Registry[Proposer] = Registry("proposer", capabilities=("chat", "paired", "reads_captions", "sampled"))
PROPOSERS.declare("llm", "visdiff.proposers.llm:_create_llm", chat=True, paired=True, reads_captions=True)
PROPOSERS.declare("vlm", "visdiff.proposers.vlm:_create_vlm", chat=True)
PROPOSERS.declare("vocabulary", "visdiff.proposers.vocabulary:_create_vocabulary")
PROPOSERS.declare("blip2-feature", "visdiff.proposers.feature:_create_feature", sampled=True)
# Build a backend from a spec such as ``llm:gpt-4o`` or ``vocabulary``; list the backend names.
create_proposer = PROPOSERS.create
list_proposers = PROPOSERS.names
