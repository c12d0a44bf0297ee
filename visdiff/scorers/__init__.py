"""Scorers: models that score every image against every hypothesis.

A scorer turns images and texts into embeddings and scores each (image, text) pair; the
ranker turns those scores into statistics. Backends are declared in :data:`SCORERS` by name,
with their capabilities, and built from ``backend:model`` specs with :func:`create_scorer`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from visdiff.registry import Registry

if TYPE_CHECKING:  # annotations only: listing the backends must not import torch
    import torch
    from PIL import Image


@runtime_checkable
class Scorer(Protocol):
    """Image/text scorer interface.

    ``cache_id`` names the weights and preprocessing exactly: two scorers with the same
    ``cache_id`` must produce the same image embeddings, since the cache is keyed on it.
    A scorer whose text embeddings depend on more than that (the offline scorer's concept
    tables) also has ``text_cache_id``, naming it: text rows are cached under both, so
    editing what only texts depend on keeps the image embeddings.
    ``preprocess`` is a picklable callable PIL image -> tensor (read in the main process,
    called in data-loader workers; a property is fine, so scorers may load lazily).
    Factories take the model part of the spec and the keywords ``device`` and ``cache`` (the
    run's :class:`~visdiff.cache_root.CacheRoot`, for files of the scorer's own), plus options
    of their own; building must be cheap (weights load on first use).
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


# Capabilities: ``pairwise`` scorers (visdiff.scorers.pairwise) score image-text pairs, and
# their factories also take ``prompts`` (prompt set), ``base_url`` (endpoint), ``llm_pool`` (the
# run's RequestPool) and ``captioning_for`` (the run's captioning stage of a spec); ``reads_captions``
# ones run a captioner; ``precision`` ones take ``precision`` ("fp32", "fp16", "bf16"; "auto");
# ``reference_mode`` ones take ``reference_mode`` (ask as the reference code did, not visdiff's way).
SCORERS: Registry[Scorer] = Registry("scorer", capabilities=("pairwise", "reads_captions", "precision",
                                                              "reference_mode"))
SCORERS.declare("open_clip", "visdiff.scorers.clip:_open_clip", precision=True)
SCORERS.declare("offline", "visdiff.scorers.offline:_offline")
SCORERS.declare("vqa", "visdiff.scorers.vqa:_create_vqa", pairwise=True, reference_mode=True)
SCORERS.declare("caption-llm", "visdiff.scorers.caption_llm:_create_caption_llm", pairwise=True, reads_captions=True,
                reference_mode=True)
# Build a backend from a spec such as ``open_clip:ViT-B-32:laion2b_s34b_b79k``; list the backend names.
create_scorer = SCORERS.create
list_scorers = SCORERS.names
