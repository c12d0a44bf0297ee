"""Scorers: models that score every image against every hypothesis.

A scorer turns images and texts into embeddings and scores each (image, text) pair; the
ranker turns those scores into statistics. Backends register in :data:`SCORERS` by name and
are built from ``backend:model`` specs with :func:`create_scorer`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

import torch
from PIL import Image

from visdiff.registry import Registry


@runtime_checkable
class Scorer(Protocol):
    """Image/text scorer interface.

    ``cache_id`` names the weights and preprocessing exactly: two scorers with the same
    ``cache_id`` must produce the same image embeddings, since the cache is keyed on it.
    ``preprocess`` is a picklable callable PIL image -> tensor (read in the main process,
    called in data-loader workers; a property is fine, so scorers may load lazily).
    """

    spec: str
    cache_id: str
    device: torch.device

    @property
    def preprocess(self) -> Callable[[Image.Image], torch.Tensor]: ...

    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        """(n, C, H, W) preprocessed batch -> (n, d) float embeddings on ``device``."""

    def encode_texts(self, texts: Sequence[str]) -> torch.Tensor:
        """m strings -> (m, d') float embeddings on ``device``."""

    def score(self, image_embeddings: torch.Tensor, text_embeddings: torch.Tensor) -> torch.Tensor:
        """(n, d), (m, d') -> (n, m) scores; higher means the text fits the image better."""


SCORERS: Registry[Scorer] = Registry("scorer")


def create_scorer(spec: str, **options) -> Scorer:
    """Build a scorer from a spec such as ``open_clip:ViT-B-32:laion2b_s34b_b79k``."""
    _load_backends()
    return SCORERS.create(spec, **options)


def list_scorers() -> list[str]:
    _load_backends()
    return SCORERS.names()


def _load_backends() -> None:
    # Importing a backend module registers it; heavy imports happen only inside factories.
    from visdiff.rankers import clip  # noqa: F401
    from visdiff.rankers import offline  # noqa: F401


def auto_device(device: str | torch.device | None = None) -> torch.device:
    """The given device, else CUDA, then Apple MPS, then CPU."""
    if device is not None:
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def auto_dtype(device: torch.device, precision: str = "auto") -> torch.dtype:
    """fp16 on accelerators (bf16 where asked), fp32 on CPU."""
    choices = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
    if precision != "auto":
        if precision not in choices:
            raise ValueError(f"precision {precision!r}; choose auto, {', '.join(choices)}")
        return choices[precision]
    return torch.float32 if device.type == "cpu" else torch.float16
