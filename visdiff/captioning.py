"""Caption image sets through any captioner, with a cache keyed by image content.

Cache key: (image content hash, the captioner's ``cache_id``: model, prompt, generation
settings), never the batch size. Only images without a cached caption are decoded and
captioned, batch by batch; each batch is written to the cache as soon as it is done, so an
interrupted run resumes where it stopped.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from visdiff.captioners import Captioner, create_captioner
from visdiff.config import default_cache_dir
from visdiff.errors import BackendError, InputError
from visdiff.io import ImageItem, ImageSet, load_image_set
from visdiff.progress import progress_bar
from visdiff.textcache import TextCache

# Bump when the meaning of a cached caption changes.
CAPTION_CACHE_VERSION = 1
DEFAULT_BATCH_SIZE = 8


@dataclass
class CaptionStats:
    """What captioning did: images captioned by the model, served from cache, undecodable."""

    captioned: int = 0
    cached: int = 0
    failed: int = 0
    seconds: float = 0.0


def caption_cache(*, cache_dir: str | Path | None, use_cache: bool) -> TextCache | None:
    if not use_cache:
        return None
    return TextCache(Path(cache_dir) if cache_dir else default_cache_dir(), "captions", version=CAPTION_CACHE_VERSION)


def resolve_captioner(captioner: str | Captioner, **options) -> Captioner:
    """Build a captioner from a spec (a built one passes through)."""
    if not isinstance(captioner, str):
        return captioner
    try:
        return create_captioner(captioner, **options)
    except TypeError as e:
        # A backend without e.g. a prompt option: say so instead of a traceback.
        raise BackendError(f"captioner {captioner!r} does not take the option(s) {', '.join(sorted(options))} ({e})") from e


def caption_image_set(
    captioner: Captioner,
    image_set: ImageSet,
    *,
    cache: TextCache | None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    show_progress: bool | None = None,
    stats: CaptionStats | None = None,
) -> tuple[dict[str, str], ImageSet]:
    """Captions {content hash: caption} of every readable image, and the set without the
    images that failed to decode (recorded as skipped)."""
    start = time.perf_counter()
    stats = stats if stats is not None else CaptionStats()
    captions: dict[str, str] = {}
    missing: dict[str, ImageItem] = {}
    for item in image_set.items:
        if item.key in captions or item.key in missing:
            continue
        cached = cache.get(cache.key({"captioner": captioner.cache_id, "image": item.key})) if cache else None
        if cached is None:
            missing[item.key] = item
        else:
            captions[item.key] = cached
            stats.cached += 1
    failed: dict[str, str] = {}
    pending = list(missing.values())
    with progress_bar(f"captioning ({captioner.spec})", len(pending), enabled=show_progress) as bar:
        for begin in range(0, len(pending), batch_size):
            batch = pending[begin: begin + batch_size]
            decoded: list[tuple[ImageItem, object]] = []
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
                if cache is not None:
                    cache.put(cache.key({"captioner": captioner.cache_id, "image": item.key}), text)
            stats.captioned += len(decoded)
            bar.advance(len(batch))
    stats.failed += len(failed)
    stats.seconds += time.perf_counter() - start
    kept = image_set.drop({i: failed[item.key] for i, item in enumerate(image_set.items) if item.key in failed})
    return captions, kept


def caption(
    images,
    *,
    captioner: str | Captioner | None = None,
    profile: str = "offline",
    batch_size: int = DEFAULT_BATCH_SIZE,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    show_progress: bool | None = None,
) -> pd.DataFrame:
    """Caption every image of a set.

    Parameters
    ----------
    images : folder, CSV, list of paths or PIL images, or ImageSet
        Anything :func:`visdiff.load_image_set` takes.
    captioner : str or Captioner, optional
        A spec such as ``blip2:Salesforce/blip2-flan-t5-xxl`` or a built captioner; default
        the profile's.
    profile : str
        Profile whose captioner is used when ``captioner`` is not given.
    batch_size : int
        Images per captioning call (not part of the cache key).

    Returns
    -------
    pandas.DataFrame
        Columns ``source, sha256, caption``, one row per readable image, in set order.
        ``attrs`` holds the captioner spec, the skipped inputs and the counts
        (captioned vs cached).
    """
    from visdiff.profiles import get_profile

    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    image_set = load_image_set(images).require(1)
    built = resolve_captioner(captioner if captioner is not None else get_profile(profile).captioner)
    stats = CaptionStats()
    captions, image_set = caption_image_set(
        built, image_set, cache=caption_cache(cache_dir=cache_dir, use_cache=use_cache),
        batch_size=batch_size, show_progress=show_progress, stats=stats,
    )
    table = pd.DataFrame(
        {"source": [it.source for it in image_set.items], "sha256": image_set.keys,
         "caption": [captions[k] for k in image_set.keys]}
    )
    table.attrs.update(captioner=built.spec, skipped=[asdict(s) for s in image_set.skipped], captions=asdict(stats))
    return table
