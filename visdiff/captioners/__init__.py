"""Captioners: models that describe one image in a sentence.

Backends register in :data:`CAPTIONERS` by name and are built from ``backend:model`` specs
with :func:`create_captioner`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from PIL import Image

from visdiff.registry import Registry


@runtime_checkable
class Captioner(Protocol):
    """Image captioning interface.

    ``cache_id`` names the model, prompt and generation settings exactly: captions are cached
    under (image content hash, ``cache_id``). Factories take the model part of the spec and
    the keywords ``device`` and ``base_url`` (a backend ignores the one it has no use for),
    plus options of their own.
    """

    spec: str
    cache_id: str

    def caption_images(self, images: Sequence[Image.Image]) -> list[str]:
        """One caption per RGB image, in order (one batched call where the backend can)."""


# Backends whose factories take ``prompts`` (the prompt set of their ``caption`` prompt).
PROMPTED_CAPTIONERS = frozenset({"blip2", "llava", "openai"})

CAPTIONERS: Registry[Captioner] = Registry("captioner", backends=(
    "visdiff.captioners.hf",
    "visdiff.captioners.openai_compat",
    "visdiff.captioners.offline",
))
# Build a backend from a spec such as ``blip2:Salesforce/blip2-flan-t5-xxl``; list the backend names.
create_captioner = CAPTIONERS.create
list_captioners = CAPTIONERS.names
