"""The reader seam: image references -> model batches of decoded, resized pixels.

Data-loader workers decode and run the PIL steps of the scorer's transform (uint8 out when
the transform splits, see :mod:`visdiff.embeddings.transforms`); the main process gathers
their small chunks into model batches of exactly ``batch_size`` images. Failures come back
with their reason, never as an error.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from visdiff.embeddings.transforms import SplitTransform
from visdiff.errors import InputError
from visdiff.image_sets import ImageItem

# Images per decoding task of a data-loader worker.
DECODE_CHUNK = 16


def default_num_workers() -> int:
    return min(4, os.cpu_count() or 1)


@dataclass
class ReadBatch:
    """Positions (into the reader's items) of decoded images with their pixels, and the
    positions that failed with their reasons."""

    positions: list[int]
    pixels: torch.Tensor | None
    failures: list[tuple[int, str]]

    def pin_memory(self) -> ReadBatch:
        """Called by the data loader on CUDA runs: page-locked pixels copy to the GPU faster."""
        return ReadBatch(self.positions, None if self.pixels is None else self.pixels.pin_memory(), self.failures)


class _DecodeDataset(Dataset):
    """Decodes and preprocesses one image; failures come back as a reason, not an error."""

    def __init__(
        self, items: list[ImageItem], preprocess: Callable[[Image.Image], torch.Tensor], min_size: int | None
    ) -> None:
        self.items = items
        self.preprocess = preprocess
        self.min_size = min_size

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        try:
            return i, self.preprocess(self.items[i].open(min_size=self.min_size)), ""
        except InputError as e:
            return i, None, str(e)


def _collate(batch) -> ReadBatch:
    ok = [(i, t) for i, t, _ in batch if t is not None]
    failed = [(i, reason) for i, t, reason in batch if t is None]
    pixels = torch.stack([t for _, t in ok]) if ok else None
    return ReadBatch([i for i, _ in ok], pixels, failed)


def _worker_init(_: int) -> None:
    # Workers only decode and resize; one thread each keeps them off the model's cores.
    torch.set_num_threads(1)


def read_batches(
    items: list[ImageItem],
    preprocess: Callable[[Image.Image], torch.Tensor],
    split: SplitTransform | None,
    *,
    batch_size: int,
    num_workers: int | None = None,
    pin_memory: bool = False,
) -> Iterator[ReadBatch]:
    """Model batches of ``batch_size`` decoded images (the last one smaller), failures
    reported in the batch that was being gathered when they came."""
    if num_workers is None:
        num_workers = default_num_workers()
    # Worker start-up costs more than it saves on a handful of images.
    workers = num_workers if len(items) > 2 * batch_size else 0
    loader = DataLoader(
        _DecodeDataset(items, split.to_uint8 if split else preprocess, split.draft_size if split else None),
        # Workers decode small chunks, gathered here into model batches: with whole model
        # batches per worker, a few large batches would keep most workers idle. A divisor
        # of batch_size, so model batches keep exactly that size.
        batch_size=math.gcd(batch_size, DECODE_CHUNK),
        num_workers=workers,
        collate_fn=_collate,
        worker_init_fn=_worker_init if workers else None,
        pin_memory=pin_memory,
        prefetch_factor=4 if workers else None,
        persistent_workers=False,
    )
    pending: list[ReadBatch] = []
    failures: list[tuple[int, str]] = []

    def gathered() -> ReadBatch:
        chunks = [c for c in pending if c.pixels is not None]
        batch = ReadBatch([i for c in chunks for i in c.positions],
                          torch.cat([c.pixels for c in chunks]) if chunks else None, list(failures))
        pending.clear()
        failures.clear()
        return batch

    for chunk in loader:
        pending.append(chunk)
        failures.extend(chunk.failures)
        if sum(len(c.positions) for c in pending) >= batch_size:
            yield gathered()
    if pending:
        yield gathered()
