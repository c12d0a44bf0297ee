"""``offline`` captioner: an image's top ImageNet class, its WordNet category and its
measured photographic properties as a short caption, e.g. "a blurry, black and white photo
of a golden retriever, a kind of dog" ("drawing" instead of "photo" for flat-filled images).

Built on the offline scorer's models (:mod:`visdiff.scorers.offline`), so an LLM proposer
can work from these captions when an LLM is configured but no captioning model is.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from PIL import Image

from visdiff.concepts import PHOTO_PROPERTIES, load_concept_table
from visdiff.errors import BackendError
from visdiff.scorers.offline import OfflineScorer

# Name the class when the classifier is this sure; otherwise name the most specific concept
# holding at least CONCEPT_CONFIDENCE of the probability ("some kind of dog").
CLASS_CONFIDENCE = 0.4
CONCEPT_CONFIDENCE = 0.6
# The category named after the class is its broadest ancestor over at most this many
# classes: "dog" (118 breeds) for a breed, "bird" for a bird.
CATEGORY_MAX_CLASSES = 120
ADJECTIVES = {"black and white photo": "black and white", "dark photo": "dark",
              "bright photo": "bright", "blurry photo": "blurry", "upside-down photo": "upside-down"}
CAPTION_VERSION = 3


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


class OfflineCaptioner:
    """Captions from ImageNet classes, WordNet categories and image statistics."""

    def __init__(self, model: str = "", *, device: str | torch.device | None = None) -> None:
        if model:
            raise BackendError(f"the offline captioner has one built-in model; got {model!r} (use 'offline')")
        self.scorer = OfflineScorer(device=device)
        self.spec = "offline"
        self.cache_id = f"{self.scorer.cache_id}-caption-v{CAPTION_VERSION}"

    def caption_images(self, images: Sequence[Image.Image]) -> list[str]:
        if not images:
            return []
        pixels = torch.stack([self.scorer.preprocess(image) for image in images])
        embeddings = self.scorer.encode_images(pixels)
        concepts, properties = self.scorer.concept_scores(embeddings)
        probabilities = embeddings[:, :1000].float()
        return [self._caption(p, c, q) for p, c, q in zip(probabilities, concepts, properties)]

    def _caption(self, probabilities: torch.Tensor, concepts: torch.Tensor, properties: torch.Tensor) -> str:
        table = load_concept_table()
        adjectives = [ADJECTIVES[p.name] for p, s in zip(PHOTO_PROPERTIES, properties.tolist())
                      if s >= 0.5 and p.name in ADJECTIVES]
        drawing = float(properties[[p.name for p in PHOTO_PROPERTIES].index("drawing")]) >= 0.5
        noun = "drawing" if drawing else "photo"
        photo = ", ".join([*adjectives, noun])
        top = int(probabilities.argmax())
        if float(probabilities[top]) >= CLASS_CONFIDENCE:
            own = table.class_concept[top]
            subject = table.concepts[own].name
            category = max(
                (k for k in table.ancestors[own] if len(table.concepts[k].classes) <= CATEGORY_MAX_CLASSES),
                key=lambda k: len(table.concepts[k].classes),
                default=None,
            )
            tail = f", a kind of {table.concepts[category].name}" if category is not None else ""
            return f"{_article(photo)} {photo} of {_article(subject)} {subject}{tail}"
        sure = [k for k in range(len(table.concepts)) if float(concepts[k]) >= CONCEPT_CONFIDENCE]
        if not sure:
            return f"{_article(photo)} {photo} of something unclear"
        specific = min(sure, key=lambda k: len(table.concepts[k].classes))
        return f"{_article(photo)} {photo} of some kind of {table.concepts[specific].name}"


def _create_offline(model: str, *, base_url: str | None = None, **options) -> OfflineCaptioner:
    del base_url  # calls no endpoint
    return OfflineCaptioner(model, **options)
