"""The captioning stage: captions image sets through one captioner, cached by image content.

Cache key: (image content hash, the captioner's ``cache_id``: model, prompt, generation
settings), never the batch size. Only images without a cached caption are decoded and
captioned, batch by batch; each batch is written to the cache as soon as it is done, so an
interrupted run resumes where it stopped. The captioner itself is built on first use: a run
whose proposer needs no captions never loads it.
"""

from __future__ import annotations

from dataclasses import dataclass

from visdiff.cache_root import CacheRoot
from visdiff.captioners import CAPTIONERS, Captioner, create_captioner
from visdiff.errors import BackendError, InputError
from visdiff.image_sets import ImageItem, ImageSet
from visdiff.progress import progress_bar
from visdiff.timing import Timings

# Bump when the meaning of a cached caption changes.
CAPTION_CACHE_VERSION = 1
DEFAULT_BATCH_SIZE = 8


@dataclass
class CaptionStats:
    """What captioning did: images captioned by the model, served from cache, undecodable."""

    captioned: int = 0
    cached: int = 0
    failed: int = 0


def build_captioner(spec: str, **options) -> Captioner:
    """Build a captioner from a spec; an option the backend does not take is a usage error."""
    try:
        return create_captioner(spec, **options)
    except TypeError as e:
        raise InputError(f"captioner {spec!r} does not take the option(s) {', '.join(sorted(options))} ({e})") from e


class Captioning:
    """Captions of image sets, through a captioner built from ``captioner`` on first use.

    Parameters
    ----------
    captioner : str or Captioner
        A spec (its backend is checked now, the model loads on first use) or a built captioner.
    cache : CacheRoot
        Where captions are cached (a disabled root caches nothing).
    timings : Timings, optional
        Where the stage records ``load_captioner`` and ``caption`` seconds.
    options : dict
        Keywords for building a captioner from a spec (``device``, ``base_url``...).
    batch_size : int
        Images per captioning call (not part of the cache key).
    """

    def __init__(self, captioner: str | Captioner, *, cache: CacheRoot, timings: Timings | None = None,
                 batch_size: int = DEFAULT_BATCH_SIZE, show_progress: bool | None = None, **options) -> None:
        if isinstance(captioner, str):
            CAPTIONERS.check(captioner)
        self._captioner = captioner
        self._options = options
        self.cache = cache.texts("captions", version=CAPTION_CACHE_VERSION)
        self.timings = timings or Timings()
        self.batch_size = batch_size
        self.show_progress = show_progress
        self.stats = CaptionStats()
        self.captions: dict[str, str] = {}

    def start_unit(self) -> None:
        """Count captions from nothing: the next unit of a sweep or benchmark counts its own."""
        self.stats = CaptionStats()

    @property
    def spec(self) -> str:
        return self._captioner if isinstance(self._captioner, str) else self._captioner.spec

    @property
    def cache_id(self) -> str | None:
        """The built captioner's cache id, None when it was never needed."""
        return None if isinstance(self._captioner, str) else self._captioner.cache_id

    @property
    def captioner(self) -> Captioner:
        if isinstance(self._captioner, str):
            with self.timings.stage("load_captioner"):
                self._captioner = build_captioner(self._captioner, **self._options)
        return self._captioner

    def caption_set(self, image_set: ImageSet) -> tuple[dict[str, str], ImageSet]:
        """Captions {content hash: caption} of every readable image, and the set without the
        images that failed to decode (recorded as skipped)."""
        captioner = self.captioner
        with self.timings.stage("caption"):
            captions, failed = self._caption_items(captioner, image_set.items)
        self.captions.update(captions)
        kept = image_set.drop({i: failed[item.key] for i, item in enumerate(image_set.items) if item.key in failed})
        return captions, kept

    def caption(self, image_set: ImageSet) -> dict[str, str]:
        """{content hash: caption} for the readable images of ``image_set``."""
        return self.caption_set(image_set)[0]

    def cached_caption(self, item: ImageItem) -> str | None:
        """The caption of ``item`` in the cache, None when there is none (building the
        captioner for its cache id loads no weights)."""
        return self.cache.get(self._cache_key(self.captioner, item)) if self.cache else None

    def _cache_key(self, captioner: Captioner, item: ImageItem) -> str:
        return self.cache.key({"captioner": captioner.cache_id, "image": item.key})

    def _caption_items(self, captioner: Captioner, items) -> tuple[dict[str, str], dict[str, str]]:
        captions: dict[str, str] = {}
        missing: dict[str, ImageItem] = {}
        for item in items:
            if item.key in captions or item.key in missing:
                continue
            cached = self.cache.get(self._cache_key(captioner, item)) if self.cache else None
            if cached is None:
                missing[item.key] = item
            else:
                captions[item.key] = cached
                self.stats.cached += 1
        failed: dict[str, str] = {}
        pending = list(missing.values())
        with progress_bar(f"captioning ({captioner.spec})", len(pending), enabled=self.show_progress) as bar:
            for begin in range(0, len(pending), self.batch_size):
                batch = pending[begin: begin + self.batch_size]
                decoded = []
                for item in batch:
                    try:
                        decoded.append((item, item.open()))
                    except InputError as e:
                        failed[item.key] = str(e)
                texts = captioner.caption_images([image for _, image in decoded])
                if len(texts) != len(decoded):
                    raise BackendError(f"captioner {captioner.spec} returned {len(texts)} captions for {len(decoded)} images")
                for (item, _), text in zip(decoded, texts, strict=True):
                    captions[item.key] = text
                    if self.cache is not None:
                        self.cache.put(self._cache_key(captioner, item), text)
                self.stats.captioned += len(decoded)
                bar.advance(len(batch))
        self.stats.failed += len(failed)
        return captions, failed
