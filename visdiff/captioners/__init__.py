"""Captioners: models that describe one image in a sentence.

Backends are declared in :data:`CAPTIONERS` by name, with their capabilities, and built from
``backend:model`` specs with :func:`create_captioner`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from visdiff.registry import Registry

if TYPE_CHECKING:
    from PIL import Image


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


# Capabilities: ``prompted`` backends' factories take ``prompts`` (the prompt set of their
# ``caption`` prompt); ``chat`` ones send chat requests and take ``llm_pool`` (the run's RequestPool).
CAPTIONERS: Registry[Captioner] = Registry("captioner", capabilities=("prompted", "chat"))
CAPTIONERS.declare("blip2", "visdiff.captioners.hf:_create_blip2", prompted=True)
CAPTIONERS.declare("llava", "visdiff.captioners.hf:_create_llava", prompted=True)
CAPTIONERS.declare("hf", "visdiff.captioners.hf:_create_hf")
CAPTIONERS.declare("openai", "visdiff.captioners.openai_compat:_create_openai", prompted=True, chat=True)
CAPTIONERS.declare("offline", "visdiff.captioners.offline:_create_offline")
# Build a backend from a spec such as ``blip2:Salesforce/blip2-flan-t5-xxl``; list the backend names.
create_captioner = CAPTIONERS.create
list_captioners = CAPTIONERS.names
