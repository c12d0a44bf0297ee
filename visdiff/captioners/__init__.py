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
    under (image content hash, ``cache_id``).
    """

    spec: str
    cache_id: str

    def caption_images(self, images: Sequence[Image.Image]) -> list[str]:
        """One caption per RGB image, in order (one batched call where the backend can)."""


CAPTIONERS: Registry[Captioner] = Registry("captioner")


def create_captioner(spec: str, **options) -> Captioner:
    """Build a captioner from a spec such as ``blip2:Salesforce/blip2-flan-t5-xxl``."""
    _load_backends()
    return CAPTIONERS.create(spec, **options)


def list_captioners() -> list[str]:
    _load_backends()
    return CAPTIONERS.names()


def _load_backends() -> None:
    # Importing a backend module registers it; heavy imports happen only inside factories.
    # (Each backend module adds its import line here.)
    from visdiff.captioners import hf, openai_compat  # noqa: F401
    from visdiff.captioners import offline  # noqa: F401
