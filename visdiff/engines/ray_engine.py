"""The ``ray`` engine: the reader/mapper/writer seams as Ray Data ``map_batches`` over an
actor pool, on this machine or an existing cluster (``--address``).

Each actor builds the scorer from its spec once (one GPU per actor when the scorer runs on
CUDA and the cluster has GPUs) and gets the images in batches of ``shard_images``: it
decodes them, runs the forward passes and commits the batch as one cache shard (or more,
every ``shard_seconds``). The cache folder must be on storage every node shares; the driver
then reads the fresh rows from it. A killed job loses at most the shards in flight; a rerun
finds the committed ones in the cache. Ray is imported only when this engine runs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from visdiff.embeddings.cache import EmbeddingCache
from visdiff.embeddings.runner import SEAMS
from visdiff.embeddings.settings import EmbedSettings
from visdiff.engines import ENGINES, EngineResult
from visdiff.errors import InputError, ServiceError
from visdiff.image_sets import ImageItem
from visdiff.registry import require
from visdiff.scorers import Scorer
from visdiff.timing import Timings

log = logging.getLogger(__name__)

RAY_CLIENT_PORT = 10001
# CPU-only clusters: one actor per this many CPUs (each actor's torch uses several threads).
CPUS_PER_ACTOR = 4


class ShardActor:
    """A Ray Data actor: one scorer, one cache store; each call embeds a batch of images, read
    through their locators (files, or members of tar shards)."""

    def __init__(self, spec: str, device: str, cache_dir: str, cache_id: str, settings: EmbedSettings,
                 scorer_options: dict) -> None:
        from visdiff.embeddings.mapper import ImageMapper
        from visdiff.scorers import create_scorer

        self.mapper = ImageMapper(create_scorer(spec, device=device, **scorer_options), settings.decode,
                                  full_decode=settings.full_decode)
        self.store = EmbeddingCache(Path(cache_dir), cache_id)
        self.settings = settings

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from visdiff.embeddings.runner import run_seams
        from visdiff.embeddings.writer import ShardWriter

        items = [ImageItem(key=str(key), source=str(source), locator=pickle.loads(bytes(locator)))
                 for key, source, locator in zip(batch["key"], batch["source"], batch["locator"])]
        writer = ShardWriter(self.store, shard_images=self.settings.shard_images,
                             shard_seconds=self.settings.shard_seconds)
        timings = Timings()
        # Ray's parallelism is the actor pool: each actor decodes in its own process.
        failures = run_seams(self.mapper, items, writer, batch_size=self.settings.batch_size, num_workers=0,
                             show_progress=False, timings=timings)
        # Per-batch figures ride on the batch's first row.
        shards = np.zeros(len(items), np.int64)
        shards[0] = writer.shards
        seconds = np.zeros((len(items), len(SEAMS)))
        seconds[0] = [timings.seconds.get(seam, 0.0) for seam in SEAMS]
        return {"key": batch["key"], "failure": np.array([failures.get(i, "") for i in range(len(items))], object),
                "shards": shards, "seconds": seconds}


class RayEngine:
    name = "ray"

    def __init__(self, address: str | None = None) -> None:
        self.address = address

    def embed(self, scorer: Scorer, items: list[ImageItem], store: EmbeddingCache | None,
              settings: EmbedSettings, timings: Timings) -> EngineResult:
        if store is None:
            raise InputError("--engine ray writes embeddings into the cache folder; it cannot run with --no-cache")
        in_memory = [item.source for item in items if item.locator is None]
        if in_memory:
            raise InputError(f"--engine ray embeds images it can read again (files, tar shard members); "
                             f"{in_memory[0]} is an in-memory image (use --engine local)")
        ray = require("ray", "ray")
        quiet = log.getEffectiveLevel() >= logging.ERROR
        with native_stderr_silenced(quiet):
            if not ray.is_initialized():
                ray.init(address=self.address, log_to_driver=False, include_dashboard=False,
                         logging_level=max(log.getEffectiveLevel(), logging.WARNING))
            result = self._embed(ray, scorer, items, store, settings, timings, quiet)
        done = [item.key for i, item in enumerate(items) if i not in result.failures]
        store.refresh()
        found, rows = store.lookup(done)
        if not found.all():
            lost = done[int(np.flatnonzero(~found)[0])]
            raise OSError(f"the ray engine's shards for {int((~found).sum())} image(s) (e.g. {lost}) are not in "
                          f"{store.path}: is the cache folder on storage every node of the cluster shares?")
        result.rows = dict(zip(done, rows)) if rows is not None else {}
        return result

    @staticmethod
    def _embed(ray, scorer: Scorer, items: list[ImageItem], store: EmbeddingCache, settings: EmbedSettings,
               timings: Timings, quiet: bool) -> EngineResult:
        """The images through the actor pool; the failures, shards written and seconds per seam."""
        ray.data.DataContext.get_current().enable_progress_bars = not quiet
        logging.getLogger("ray.data").setLevel(logging.ERROR if quiet else logging.WARNING)
        cuda = scorer.device.type == "cuda"
        gpus = int(ray.cluster_resources().get("GPU", 0)) if cuda else 0
        actors = gpus or max(1, int(ray.cluster_resources().get("CPU", 1)) // CPUS_PER_ACTOR)
        dataset = ray.data.from_items(
            # Each actor reads the images again through their locators, sent pickled (a file's path
            # may not be UTF-8, which Arrow's strings need).
            [{"key": it.key, "source": it.source, "locator": pickle.dumps(it.locator)} for it in items]
        ).map_batches(
            ShardActor, batch_size=settings.shard_images, batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=actors), num_gpus=1 if gpus else 0, num_cpus=1,
            fn_constructor_kwargs={"spec": scorer.spec, "device": "cuda" if gpus else "cpu",
                                   "cache_dir": str(store.cache_dir), "cache_id": store.cache_id,
                                   "settings": settings,
                                   # The driver's scorer's precision, which its spec does not say.
                                   "scorer_options": {"precision": scorer.precision} if hasattr(scorer, "precision") else {}},
        )
        position = {item.key: i for i, item in enumerate(items)}
        result = EngineResult()
        seconds = np.zeros(len(SEAMS))
        for batch in dataset.iter_batches(batch_format="numpy", batch_size=None):
            for key, failure in zip(batch["key"], batch["failure"]):
                if failure:
                    result.failures[position[str(key)]] = str(failure)
            result.shards += int(batch["shards"].sum())
            seconds += batch["seconds"].sum(axis=0)
        # Actor-seconds summed over the pool: with k actors, up to k times the wall time.
        for seam, spent in zip(SEAMS, seconds):
            timings.add(seam, float(spent))
        log.info("ray engine: %d images on %d actor(s) (%d failed), actor-seconds: read %.2f, decode on the "
                 "device %.2f, model %.2f, write %.2f (%d shards)", len(items), actors, len(result.failures),
                 *seconds, result.shards)
        return result


@contextlib.contextmanager
def native_stderr_silenced(silenced: bool) -> Iterator[None]:
    """With ``silenced`` (``-q``), what Ray's C++ core writes to this process's stderr is
    dropped: a line per actor pool that no setting turns off ("constructor arguments in the
    object store"). Failures still reach the user as the exceptions Ray raises."""
    if not silenced:
        yield
        return
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


# What ray.init takes as an address: "auto", "local", a Ray client URL or a GCS host:port.
_RAY_ADDRESS = re.compile(r"auto|local|ray://[^\s/:]+(?::\d+)?|[^\s/:]+:\d+")


@ENGINES.register("ray")
def _create(model: str, *, address: str | None = None) -> RayEngine:
    address = address if address is not None else model or None  # an empty --address is refused below
    # Checked here, before any image is read: Ray itself says "unexpected ValueError" much later.
    if address is not None and not _RAY_ADDRESS.fullmatch(address):
        raise InputError(f"--address {address!r} is no Ray cluster address; give 'auto', 'ray://HOST:PORT' "
                         "or HOST:PORT (or leave it out for a new local Ray)")
    if address is not None and ":" in address:
        check_reachable(address)
    return RayEngine(address)


def check_reachable(address: str, timeout: float = 5.0) -> None:
    """``ServiceError`` unless something answers at the address's host and port: ray.init
    would retry an unreachable cluster for minutes, Ctrl-C taking half a minute more."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host:  # ray://HOST: the Ray client's default port
        host, port = port, RAY_CLIENT_PORT
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as e:
        reason = "no answer" if isinstance(e, TimeoutError) else e.strerror or str(e)
        raise ServiceError(f"no Ray cluster at --address {address!r}: {reason} (within {timeout:g} s)") from e
