"""The mapper seam: batches of pixels -> float16 embeddings, on the scorer's device."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

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
    ``full_decode``: JPEGs at full scale, never at a reduced one (``Image.draft``).
    """

    def __init__(self, scorer: Scorer, decode: str = "auto", *, full_decode: bool = False) -> None:
        self.scorer = scorer
        self.split: SplitTransform | None = split_transform(scorer.preprocess)
        if self.split is not None and full_decode:
            self.split = replace(self.split, draft_size=None)
        self.jpegs_on_device = decodes_on_device(decode, scorer.device) and self.split is not None
        # Whether launch() returns before the rows are ready (the runner then prepares the
        # next batch first).
        self.overlaps = scorer.device.type == "cuda"

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

    def launch(self, pixels: torch.Tensor) -> Callable[[], np.ndarray]:
        """Start the forward pass of (n, C, H, W) pixels; returns a call that gives the (n, d)
        float16 embeddings (through float16 as they are stored, so cached and fresh
        embeddings give identical scores). On CUDA the copy back to the host is queued behind
        the forward pass and the call waits for it, so the caller can prepare the next batch
        meanwhile; elsewhere the rows are ready now."""
        if self.split is not None:
            pixels = self.split.normalize(pixels, self.scorer.device)
        embeddings = self.scorer.encode_images(pixels).float()
        if embeddings.device.type != "cuda":
            rows = embeddings.cpu().numpy().astype(np.float16)
            return lambda: rows
        host = torch.empty(embeddings.shape, dtype=embeddings.dtype, pin_memory=True)
        host.copy_(embeddings, non_blocking=True)
        copied = torch.cuda.Event()
        copied.record()

        def rows() -> np.ndarray:
            copied.synchronize()
            return host.numpy().astype(np.float16)

        return rows
