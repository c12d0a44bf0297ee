"""The in-process runner: reader -> mapper -> writer, each part timed on its own.

The clock of each part is the time the runner waits for it: ``embed_read`` while the next
decoded batch is not ready (decoding runs ahead in worker processes, so this is only the
time the model starved), ``embed_decode`` for JPEGs decoded on the scorer's device (only when
they are; on CUDA, kernels run asynchronously, so part of that work shows in the next
part), ``embed_map`` for the forward passes (on CUDA: launching them and waiting for their
rows), ``embed_write`` for shard commits. The largest says whether reading, the model or
writing is the bottleneck.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import nullcontext

import numpy as np

from visdiff.embeddings.mapper import ImageMapper
from visdiff.embeddings.reader import read_batches
from visdiff.embeddings.writer import ShardWriter
from visdiff.image_sets import ImageItem
from visdiff.progress import progress_bar
from visdiff.timing import Timings

log = logging.getLogger(__name__)

SEAMS = ("embed_read", "embed_decode", "embed_map", "embed_write")


def run_seams(
    mapper: ImageMapper,
    items: list[ImageItem],
    writer: ShardWriter,
    *,
    batch_size: int,
    num_workers: int | None = None,
    show_progress: bool | None = None,
    timings: Timings | None = None,
) -> dict[int, str]:
    """Embed ``items`` into ``writer``; returns {position: reason} for those that failed."""
    timings = timings or Timings()
    before = {seam: timings.seconds.get(seam, 0.0) for seam in SEAMS}
    failures: dict[int, str] = {}
    batches = read_batches(items, mapper.scorer.preprocess, mapper.split, batch_size=batch_size,
                           num_workers=num_workers, pin_memory=mapper.scorer.device.type == "cuda",
                           jpegs_to_device=mapper.jpegs_on_device)
    # With ``mapper.overlaps`` (CUDA), the rows of the batch launched last are taken and
    # written only after the next batch is launched, so the next batch is gathered and
    # decoded while the GPU runs. On the CPU rows are ready at launch and written at once,
    # so a killed run loses less than one shard (on CUDA, plus the batch in flight).
    launched: tuple[list[str], Callable[[], np.ndarray]] | None = None

    def write(keys: list[str], rows: Callable[[], np.ndarray]) -> None:
        with timings.stage("embed_map"):
            embeddings = rows()
        with timings.stage("embed_write"):
            writer.add(keys, embeddings)

    with progress_bar("embedding images", len(items), enabled=show_progress) as bar:
        while True:
            with timings.stage("embed_read"):
                batch = next(batches, None)
            if batch is None:
                break
            failures.update(batch.failures)
            with timings.stage("embed_decode") if batch.jpegs else nullcontext():
                positions, pixels, failed = mapper.decode(batch, items)
            failures.update(failed)
            if pixels is not None:
                with timings.stage("embed_map"):
                    rows = mapper.launch(pixels)
                if launched is not None:
                    write(*launched)
                    launched = None
                if mapper.overlaps:
                    launched = [items[i].key for i in positions], rows
                else:
                    write([items[i].key for i in positions], rows)
            bar.advance(len(batch) + len(batch.failures))
        if launched is not None:
            write(*launched)
        with timings.stage("embed_write"):
            writer.close()
    spent = {seam: timings.seconds.get(seam, 0.0) - before[seam] for seam in SEAMS}
    log.info("embedded %d images (%d failed): read %.2f s, decode on the device %.2f s, model %.2f s, "
             "write %.2f s (%d shards)",
             len(items) - len(failures), len(failures), *spent.values(), writer.shards)
    return failures
