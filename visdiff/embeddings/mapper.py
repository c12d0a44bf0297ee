"""The mapper seam: batches of pixels -> float16 embeddings, on the scorer's device."""

from __future__ import annotations

import numpy as np
import torch

from visdiff.embeddings.transforms import SplitTransform, split_transform
from visdiff.scorers import Scorer


class ImageMapper:
    """Runs the scorer's forward pass on reader batches (uint8 pixels are scaled and
    normalised on the device first)."""

    def __init__(self, scorer: Scorer) -> None:
        self.scorer = scorer
        self.split: SplitTransform | None = split_transform(scorer.preprocess)

    def __call__(self, pixels: torch.Tensor) -> np.ndarray:
        """(n, C, H, W) pixels -> (n, d) float16 embeddings, through float16 as they are
        stored, so cached and fresh embeddings give identical scores."""
        if self.split is not None:
            pixels = self.split.normalize(pixels, self.scorer.device)
        return self.scorer.encode_images(pixels).float().cpu().numpy().astype(np.float16)
