"""The reader seam: image references -> model batches of decoded, resized pixels.

An image is read through its item (:meth:`ImageItem.read`): the bytes held since it was
hashed, or its locator (a file, a member of a tar shard), in whichever worker decodes it.

Data-loader workers decode and run the PIL steps of the scorer's transform (uint8 out when
the transform splits, see :mod:`visdiff.embeddings.transforms`); the main process gathers
their small chunks into model batches of exactly ``batch_size`` images. Failures come back
with their reason, never as an error. With ``jpegs_to_device``, workers pass JPEGs the device
can decode through as their bytes (:func:`visdiff.embeddings.jpeg.device_decodable`), for
the mapper to decode on the scorer's device, and decode only the other files.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from visdiff.decoding import decode_image_bytes
from visdiff.embeddings.jpeg import device_decodable
from visdiff.embeddings.transforms import SplitTransform
from visdiff.errors import InputError
from visdiff.image_sets import ImageItem

# Images per decoding task of a data-loader worker.
DECODE_CHUNK = 16


def default_num_workers() -> int:
    return min(4, os.cpu_count() or 1)


@dataclass
class ReadBatch:
    """Positions (into the reader's items) of decoded images with their pixels, positions of
    JPEGs left for the device with their files' bytes, and the positions that failed with
    their reasons."""

    positions: list[int]
    pixels: torch.Tensor | None
    failures: list[tuple[int, str]]
    jpeg_positions: list[int] = field(default_factory=list)
    # Bytes, not tensors: a worker's tensors cross to the main process as shared-memory
    # file descriptors, one per tensor, and hundreds in flight can exhaust the process's limit.
    jpegs: list[bytes] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.positions) + len(self.jpeg_positions)

    def pin_memory(self) -> ReadBatch:
        """Called by the data loader on CUDA runs: page-locked pixels copy to the GPU faster."""
        return replace(self, pixels=None if self.pixels is None else self.pixels.pin_memory())


class _DecodeDataset(Dataset):
    """Decodes and preprocesses one image, or reads a device-decodable JPEG's bytes; failures
    come back as a reason, not an error."""

    def __init__(self, items: list[ImageItem], preprocess: Callable[[Image.Image], torch.Tensor],
                 min_size: int | None, jpegs_to_device: bool) -> None:
        self.items = items
        self.preprocess = preprocess
        self.min_size = min_size
        self.jpegs_to_device = jpegs_to_device

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[int, torch.Tensor | None, bytes | None, str]:
        """(position, pixels, JPEG bytes, reason): one of the last three is set."""
        item = self.items[i]
        try:
            if not self.jpegs_to_device or item.image is not None:
                return i, self.preprocess(item.open(min_size=self.min_size)), None, ""
            data = item.read()
            if device_decodable(data):
                return i, None, data, ""
            return i, self.preprocess(decode_image_bytes(data, source=item.source, min_size=self.min_size)), None, ""
        except InputError as e:
            return i, None, None, str(e)


def _collate(batch) -> ReadBatch:
    decoded = [(i, t) for i, t, _, _ in batch if t is not None]
    jpegs = [(i, data) for i, _, data, _ in batch if data is not None]
    failed = [(i, reason) for i, _, _, reason in batch if reason]
    return ReadBatch([i for i, _ in decoded], torch.stack([t for _, t in decoded]) if decoded else None, failed,
                     [i for i, _ in jpegs], [data for _, data in jpegs])


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
    jpegs_to_device: bool = False,
) -> Iterator[ReadBatch]:
    """Model batches of ``batch_size`` decoded images (the last one smaller), failures
    reported in the batch that was being gathered when they came."""
    if num_workers is None:
        num_workers = default_num_workers()
    # Worker start-up costs more than it saves on a handful of images.
    workers = num_workers if len(items) > 2 * batch_size else 0
    loader = DataLoader(
        _DecodeDataset(items, split.to_uint8 if split else preprocess, split.draft_size if split else None,
                       jpegs_to_device and split is not None),
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
                          torch.cat([c.pixels for c in chunks]) if chunks else None, list(failures),
                          [i for c in pending for i in c.jpeg_positions], [d for c in pending for d in c.jpegs])
        pending.clear()
        failures.clear()
        return batch

    for chunk in loader:
        pending.append(chunk)
        failures.extend(chunk.failures)
        if sum(len(c) for c in pending) >= batch_size:
            yield gathered()
    if pending:
        yield gathered()
