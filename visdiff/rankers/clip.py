"""open_clip scorer: cosine similarity between CLIP image and text embeddings.

Specs (after the ``open_clip:`` prefix):

- ``ARCH:TAG`` — an architecture and pretrained tag from ``open_clip.list_pretrained()``,
  e.g. ``ViT-bigG-14:laion2b_s39b_b160k`` (the paper's ranker) or ``ViT-B-32:laion2b_s34b_b79k``
  (the default: 150M parameters, fine on a laptop CPU);
- ``ARCH:/path/to/weights.pt`` — an architecture with a local state-dict file;
- ``hf-hub:ORG/REPO`` — an open_clip model on the Hugging Face hub.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import torch
from PIL import Image

from visdiff.errors import BackendError
from visdiff.rankers import SCORERS, auto_device, auto_dtype
from visdiff.registry import require

DEFAULT_MODEL = "ViT-B-32:laion2b_s34b_b79k"
PAPER_MODEL = "ViT-bigG-14:laion2b_s39b_b160k"


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def split_model(model: str) -> tuple[str, str | None]:
    """``ARCH:PRETRAINED`` -> (arch, pretrained or None); hf-hub names are kept whole."""
    model = model or DEFAULT_MODEL
    if model.startswith("hf-hub:"):
        return model, None
    arch, _, pretrained = model.partition(":")
    return arch, pretrained or None


class OpenClipScorer:
    """CLIP scorer over any open_clip model; embeddings are L2-normalised."""

    def __init__(
        self,
        model: str = "",
        *,
        device: str | torch.device | None = None,
        precision: str = "auto",
    ) -> None:
        open_clip = require("open_clip", "open_clip")
        arch, pretrained = split_model(model)
        if not arch.startswith("hf-hub:") and arch not in open_clip.list_models():
            raise BackendError(
                f"unknown open_clip architecture {arch!r}; see open_clip.list_models() "
                f"(e.g. {', '.join(open_clip.list_models()[:3])}, ...)"
            )
        self.device = auto_device(device)
        self.dtype = auto_dtype(self.device, precision)
        if pretrained and Path(pretrained).is_file():
            weights_id = "file-" + _file_digest(Path(pretrained))
        else:
            weights_id = pretrained or "hub"
        try:
            clip_model, _, preprocess = open_clip.create_model_and_transforms(
                arch, pretrained=pretrained, device=self.device
            )
        except (RuntimeError, OSError, ValueError) as e:
            raise BackendError(f"cannot load open_clip model {model!r}: {e}") from e
        self.model = clip_model.to(dtype=self.dtype).eval()
        self._preprocess = preprocess
        self.tokenizer = open_clip.get_tokenizer(arch)
        self.spec = f"open_clip:{arch}" + (f":{pretrained}" if pretrained else "")
        preprocess_id = hashlib.sha256(repr(preprocess).encode()).hexdigest()[:12]
        self.cache_id = f"open_clip-{arch}-{weights_id}-pre{preprocess_id}"

    def preprocess(self, image: Image.Image) -> torch.Tensor:
        return self._preprocess(image)

    @torch.inference_mode()
    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        pixels = pixels.to(self.device, self.dtype, non_blocking=True)
        features = self.model.encode_image(pixels).float()
        return torch.nn.functional.normalize(features, dim=-1)

    @torch.inference_mode()
    def encode_texts(self, texts: Sequence[str]) -> torch.Tensor:
        tokens = self.tokenizer(list(texts)).to(self.device)
        features = self.model.encode_text(tokens).float()
        return torch.nn.functional.normalize(features, dim=-1)

    def score(self, image_embeddings: torch.Tensor, text_embeddings: torch.Tensor) -> torch.Tensor:
        return image_embeddings @ text_embeddings.T


@SCORERS.register("open_clip")
def _open_clip(model: str, **options) -> OpenClipScorer:
    return OpenClipScorer(model, **options)
