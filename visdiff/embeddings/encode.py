"""Image embeddings: read -> decode/preprocess (worker processes) -> encode -> cache.

Only images whose content hash is not in the cache are decoded and encoded; each distinct
image is encoded once even if it appears in both sets. Images that fail to decode are
dropped from the set with a reason, never embedded as garbage.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from visdiff.embeddings.cache import EmbeddingCache
from visdiff.embeddings.transforms import split_transform
from visdiff.errors import InputError
from visdiff.image_sets import ImageItem, ImageSet
from visdiff.progress import progress_bar
from visdiff.scorers import Scorer

log = logging.getLogger(__name__)


@dataclass
class EmbedStats:
    """What one embedding call did: images encoded by the model, served from cache, failed."""

    encoded: int = 0
    cached: int = 0
    failed: int = 0
    seconds: float = 0.0


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


def _collate(batch):
    ok = [(i, t) for i, t, _ in batch if t is not None]
    failed = [(i, reason) for i, t, reason in batch if t is None]
    pixels = torch.stack([t for _, t in ok]) if ok else None
    return [i for i, _ in ok], pixels, failed


def _worker_init(_: int) -> None:
    # Workers only decode and resize; one thread each keeps them off the model's cores.
    torch.set_num_threads(1)


# Images per decoding task of a data-loader worker.
DECODE_CHUNK = 16


def default_num_workers() -> int:
    return min(4, os.cpu_count() or 1)


def encode_items(
    scorer: Scorer,
    items: list[ImageItem],
    *,
    batch_size: int = 64,
    num_workers: int | None = None,
    show_progress: bool | None = None,
) -> tuple[np.ndarray, dict[int, str]]:
    """Encode ``items`` -> (float16 embeddings in order of the successfully decoded items'
    positions, {position: reason} for those that failed). Row ``r`` of the result belongs to
    the ``r``-th position not in the failure dict."""
    if num_workers is None:
        num_workers = default_num_workers()
    # Worker start-up costs more than it saves on a handful of images.
    workers = num_workers if len(items) > 2 * batch_size else 0
    split = split_transform(scorer.preprocess)
    loader = DataLoader(
        _DecodeDataset(items, split.to_uint8 if split else scorer.preprocess, split.draft_size if split else None),
        # Workers decode small chunks, gathered here into model batches: with whole model
        # batches per worker, a few large batches would keep most workers idle. A divisor
        # of batch_size, so model batches keep exactly that size.
        batch_size=math.gcd(batch_size, DECODE_CHUNK),
        num_workers=workers,
        collate_fn=_collate,
        worker_init_fn=_worker_init if workers else None,
        pin_memory=scorer.device.type == "cuda",
        prefetch_factor=4 if workers else None,
        persistent_workers=False,
    )
    out = [None] * len(items)
    failures: dict[int, str] = {}
    pending: list[tuple[list[int], torch.Tensor]] = []

    def encode_pending() -> None:
        pixels = torch.cat([chunk for _, chunk in pending])
        if split is not None:
            pixels = split.normalize(pixels, scorer.device)
        # Through float16 as stored, so cached and fresh embeddings give identical scores.
        emb = scorer.encode_images(pixels).float().cpu().numpy().astype(np.float16)
        for row, i in enumerate(i for positions, _ in pending for i in positions):
            out[i] = emb[row]
        bar.advance(len(emb))
        pending.clear()

    with progress_bar("embedding images", len(items), enabled=show_progress) as bar:
        for positions, pixels, failed in loader:
            for i, reason in failed:
                failures[i] = reason
            bar.advance(len(failed))
            if pixels is not None:
                pending.append((positions, pixels))
            if sum(len(p) for p, _ in pending) >= batch_size:
                encode_pending()
        if pending:
            encode_pending()
    rows = [e for e in out if e is not None]
    dim = rows[0].shape[0] if rows else 0
    return (np.stack(rows) if rows else np.zeros((0, dim), np.float16)), failures


def embed_image_set(
    scorer: Scorer,
    image_set: ImageSet,
    *,
    cache: EmbeddingCache | None = None,
    batch_size: int = 64,
    num_workers: int | None = None,
    show_progress: bool | None = None,
    stats: EmbedStats | None = None,
) -> tuple[torch.Tensor, ImageSet]:
    """Embeddings of every readable image of ``image_set`` as one float32 tensor on
    ``scorer.device``, and the set without the images that failed to decode."""
    start = time.perf_counter()
    stats = stats if stats is not None else EmbedStats()
    keys = image_set.keys
    if cache is not None:
        found, cached_rows = cache.lookup(keys)
    else:
        found, cached_rows = np.zeros(len(keys), bool), None
    stats.cached += int(found.sum())

    # Distinct missing images, first occurrence of each (loops touch only the misses).
    missing_positions = np.flatnonzero(~found)
    missing: dict[str, ImageItem] = {}
    for i in missing_positions:
        missing.setdefault(keys[i], image_set.items[i])
    fresh_rows: dict[str, np.ndarray] = {}
    failed: dict[str, str] = {}
    dim = cached_rows.shape[1] if cached_rows is not None else 0
    if missing:
        todo = list(missing.values())
        emb, failures = encode_items(
            scorer, todo, batch_size=batch_size, num_workers=num_workers, show_progress=show_progress
        )
        ok_items = [item for i, item in enumerate(todo) if i not in failures]
        failed = {todo[i].key: reason for i, reason in failures.items()}
        stats.encoded += len(ok_items)
        stats.failed += len(failures)
        if cache is not None and ok_items:
            cache.add([it.key for it in ok_items], emb)
        fresh_rows = dict(zip((it.key for it in ok_items), emb))
        dim = dim or emb.shape[1]

    # torch converts float16 -> float32 several times faster than numpy.
    matrix = torch.empty((len(keys), dim), dtype=torch.float32)
    if cached_rows is not None:
        matrix[torch.from_numpy(found)] = torch.from_numpy(cached_rows).float()
    bad: dict[int, str] = {}
    for i in missing_positions:
        if keys[i] in fresh_rows:
            matrix[i] = torch.from_numpy(fresh_rows[keys[i]]).float()
        else:
            bad[int(i)] = failed[keys[i]]
    if bad:
        keep = torch.ones(len(keys), dtype=torch.bool)
        keep[sorted(bad)] = False
        matrix = matrix[keep]
    stats.seconds += time.perf_counter() - start
    return matrix.to(scorer.device), image_set.drop(bad)
