"""The mapper seam: batches of pixels -> float16 embeddings, on the scorer's device."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from visdiff.embeddings.jpeg import decode_jpegs, decodes_on_device
from visdiff.embeddings.reader import ReadBatch
from visdiff.embeddings.transforms import SplitTransform, split_transform
from visdiff.image_sets import ImageItem
from visdiff.scorers import Scorer


class ImageMapper:
    """Runs the scorer's forward pass on reader batches (uint8 pixels are scaled and
    normalised on the device first).

    ``decode``: where JPEGs are decoded, "device" (:mod:`visdiff.embeddings.jpeg`),
    "workers" (PIL in the reader's workers) or "auto" (the device when it is CUDA). Only a
    scorer whose transform splits (:func:`split_transform`) decodes on the device.
    """

    def __init__(self, scorer: Scorer, decode: str = "auto") -> None:
        self.scorer = scorer
        self.split: SplitTransform | None = split_transform(scorer.preprocess)
        self.jpegs_on_device = decodes_on_device(decode, scorer.device) and self.split is not None

    def decode(self, batch: ReadBatch, items: Sequence[ImageItem]) -> tuple[list[int], torch.Tensor | None,
                                                                            dict[int, str]]:
        """The batch's JPEG bytes decoded, resized and cropped on the device and put after its
        other pixels: (positions, pixels, {position: reason} for JPEGs that failed)."""
        if not batch.jpegs:
            return batch.positions, batch.pixels, {}
        device = self.scorer.device
        decoded, failed = decode_jpegs(batch.jpegs, [items[i].source for i in batch.jpeg_positions], self.split,
                                       device)
        parts = [batch.pixels.to(device, non_blocking=True)] if batch.pixels is not None else []
        parts += [torch.stack(decoded)] if decoded else []
        decoded_positions = [p for k, p in enumerate(batch.jpeg_positions) if k not in failed]
        return (batch.positions + decoded_positions, torch.cat(parts) if parts else None,
                {batch.jpeg_positions[k]: reason for k, reason in failed.items()})

    def __call__(self, pixels: torch.Tensor) -> np.ndarray:
        """(n, C, H, W) pixels -> (n, d) float16 embeddings, through float16 as they are
        stored, so cached and fresh embeddings give identical scores."""
        if self.split is not None:
            pixels = self.split.normalize(pixels, self.scorer.device)
        return self.scorer.encode_images(pixels).float().cpu().numpy().astype(np.float16)
