"""open_clip scorer: cosine similarity between CLIP image and text embeddings.

Specs (after the ``open_clip:`` prefix):

- ``ARCH:TAG`` — an architecture and pretrained tag from ``open_clip.list_pretrained()``,
  e.g. ``ViT-bigG-14:laion2b_s39b_b160k`` (the paper's ranker) or ``ViT-B-32:laion2b_s34b_b79k``
  (the default: 150M parameters, fine on a laptop CPU);
- ``ARCH:/path/to/weights.pt`` — an architecture with a local state-dict file;
- ``hf-hub:ORG/REPO`` — an open_clip model on the Hugging Face hub.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import logging
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import torch
from PIL import Image

from visdiff.errors import BackendError, InputError, excerpt
from visdiff.cache_root import CacheRoot
from visdiff.devices import auto_device, auto_dtype
from visdiff.hub import hub_loading
from visdiff.registry import require

DEFAULT_MODEL = "ViT-B-32:laion2b_s34b_b79k"
PAPER_MODEL = "ViT-bigG-14:laion2b_s39b_b160k"

log = logging.getLogger(__name__)


def _file_id(path: Path) -> str:
    """Identity of a weights file: size plus SHA-256 of its first and last MiB (hashing a
    multi-GB checkpoint on every run would cost more than the cache saves)."""
    size = path.stat().st_size
    h = hashlib.sha256(str(size).encode())
    with open(path, "rb") as f:
        h.update(f.read(1 << 20))
        f.seek(max(0, size - (1 << 20)))
        h.update(f.read(1 << 20))
    return f"file-{h.hexdigest()[:16]}"


def split_model(model: str) -> tuple[str, str | None]:
    """``ARCH:PRETRAINED`` -> (arch, pretrained or None); hf-hub names are kept whole."""
    model = model or DEFAULT_MODEL
    if model.startswith("hf-hub:"):
        return model, None
    arch, _, pretrained = model.partition(":")
    return arch, pretrained or None


def check_arch_and_weights(open_clip, arch: str, pretrained: str | None) -> None:
    """Fail early, listing the choices, on an unknown architecture, an unknown pretrained
    tag or a missing weights file; and refuse no weights at all (open_clip would silently
    build a randomly initialised model, whose rankings mean nothing)."""
    architectures = open_clip.list_models()
    if arch not in architectures:
        close = difflib.get_close_matches(arch, architectures, n=3, cutoff=0.6)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise InputError(
            f"unknown open_clip architecture {arch!r}; {hint}choose one of: {', '.join(architectures)}"
        )
    if pretrained and Path(pretrained).is_file():
        return
    if pretrained and ("/" in pretrained or pretrained.endswith((".pt", ".pth", ".bin", ".safetensors"))):
        raise InputError(f"open_clip weights file {pretrained!r} does not exist")
    tags = open_clip.list_pretrained_tags_by_model(arch)
    choices = f"tags for {arch}: {', '.join(tags)}" if tags else f"{arch} has no published tags"
    if not pretrained:
        raise InputError(
            f"open_clip:{arch} names no weights; use open_clip:{arch}:TAG or open_clip:{arch}:/path/to/weights.pt "
            f"({choices})"
        )
    if pretrained not in tags:
        raise InputError(f"unknown pretrained tag {pretrained!r} for open_clip {arch}; {choices}")



@contextlib.contextmanager
def errors_not_logged() -> Iterator[None]:
    """open_clip logs a failed download with ``logging.error`` and then raises the same text,
    which visdiff reports: said once, not twice."""
    logging.disable(logging.ERROR)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)


class OpenClipScorer:
    """CLIP scorer over any open_clip model; embeddings are L2-normalised.

    Weights load on first use, so a run served entirely from the cache never loads them.
    """

    def __init__(
        self,
        model: str = "",
        *,
        device: str | torch.device | None = None,
        precision: str = "auto",
    ) -> None:
        self._open_clip = require("open_clip", "open_clip")
        arch, pretrained = split_model(model)
        if not arch.startswith("hf-hub:"):
            check_arch_and_weights(self._open_clip, arch, pretrained)
        self.arch, self.pretrained = arch, pretrained
        self.device = auto_device(device)
        self.precision, self.dtype = precision, auto_dtype(self.device, precision)
        weights_id = _file_id(Path(pretrained)) if pretrained and Path(pretrained).is_file() else pretrained or "hub"
        self.spec = f"open_clip:{arch}" + (f":{pretrained}" if pretrained else "")
        # open_clip derives preprocessing from (arch, pretrained), so they name it too.
        # "auto" keeps the name it always had (fp16 on a GPU, fp32 on a CPU); a chosen precision is named.
        self.cache_id = f"open_clip-{arch}-{weights_id}" + (f"-{precision}" if precision != "auto" else "")
        self._model = self._preprocess = self._tokenizer = None
        self._checked_texts: set[str] = set()

    def _load(self) -> None:
        if self._model is not None:
            return
        from_hub = self.arch.startswith("hf-hub:") or bool(self.pretrained) and not Path(self.pretrained).is_file()
        try:
            with hub_loading(from_hub=from_hub), errors_not_logged():
                model, _, preprocess = self._open_clip.create_model_and_transforms(
                    self.arch, pretrained=self.pretrained, device=self.device
                )
        # Not swallowed, re-raised with its cause: torch.load of a damaged or foreign file
        # raises nearly any type (UnpicklingError, IndexError, EOFError, RuntimeError...).
        except Exception as e:
            detail = str(e) if isinstance(e, BackendError) else f"{type(e).__name__}: {e}"
            raise BackendError(f"cannot load open_clip model {self.spec!r}: {detail}") from e
        self._model = model.to(dtype=self.dtype).eval()
        self._preprocess = preprocess
        self._tokenizer = self._open_clip.get_tokenizer(self.arch)

    @property
    def preprocess(self) -> Callable[[Image.Image], torch.Tensor]:
        self._load()
        return self._preprocess

    @torch.inference_mode()
    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        self._load()
        pixels = pixels.to(self.device, self.dtype, non_blocking=True)
        features = self._model.encode_image(pixels).float()
        return torch.nn.functional.normalize(features, dim=-1)

    @torch.inference_mode()
    def encode_texts(self, texts: Sequence[str]) -> torch.Tensor:
        self._load()
        tokens = self._tokenizer(list(texts)).to(self.device)
        features = self._model.encode_text(tokens).float()
        return torch.nn.functional.normalize(features, dim=-1)

    def warn_of_cut_texts(self, texts: Sequence[str]) -> None:
        """Warn, once per text, of each text that fills the text tower's whole context:
        open_clip's tokenizers cut longer texts without a word, so the words past the context
        would silently go unscored. Asked for every text scored, its embedding cached or not
        (the tokenizer alone: no weights load). A text's last token is padding unless it
        fills the context; the empty text's last token is the padding of any tokenizer."""
        unchecked = [text for text in dict.fromkeys(texts) if text not in self._checked_texts]
        if not unchecked:
            return
        if self._tokenizer is None:
            with hub_loading(from_hub=self.arch.startswith("hf-hub:")):
                self._tokenizer = self._open_clip.get_tokenizer(self.arch)
        self._checked_texts.update(unchecked)
        tokens = self._tokenizer(unchecked)
        padding = self._tokenizer([""])[0, -1]
        for text, full in zip(unchecked, (tokens[:, -1] != padding).tolist()):
            if full:
                log.warning("hypothesis %r fills the whole text context of %s (%d tokens): words past it "
                            "are not scored; shorten it", excerpt(text), self.spec, tokens.shape[1])

    def score(self, image_embeddings: torch.Tensor, text_embeddings: torch.Tensor) -> torch.Tensor:
        return image_embeddings @ text_embeddings.T


def _open_clip(model: str, *, cache: CacheRoot | None = None, **options) -> OpenClipScorer:
    del cache  # keeps no files of its own
    return OpenClipScorer(model, **options)
