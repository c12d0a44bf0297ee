"""The images behind each hypothesis: top-scoring images of A and B, as embedded thumbnails,
with any tie at the cut said: of equal scores, which are shown is set order, not evidence."""

from __future__ import annotations

import base64
import io
import logging
import os
from dataclasses import dataclass

import numpy as np

from visdiff.errors import InputError
from visdiff.image_sets import ImageItem, ImageSet, display_path

log = logging.getLogger(__name__)

THUMBNAIL_SIZE = 160
JPEG_QUALITY = 82


@dataclass(frozen=True)
class EvidenceImage:
    """One image shown under a hypothesis: where it came from, its score, its thumbnail."""

    source: str
    name: str
    score: float
    caption: str
    data_uri: str | None
    error: str = ""


class ThumbnailCache:
    """JPEG thumbnails as ``data:`` URIs, made once per image content hash."""

    def __init__(self, size: int = THUMBNAIL_SIZE) -> None:
        self.size = size
        self._uris: dict[str, tuple[str | None, str]] = {}

    def get(self, item: ImageItem) -> tuple[str | None, str]:
        """(data URI, '') or (None, reason) when the image can no longer be read."""
        if item.key not in self._uris:
            self._uris[item.key] = self._make(item)
        return self._uris[item.key]

    def _make(self, item: ImageItem) -> tuple[str | None, str]:
        try:
            jpeg = jpeg_of(item, self.size)
        except (InputError, OSError) as e:
            log.warning("report: no thumbnail for %s: %s", item.source, e)
            return None, str(e)
        return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii"), ""


def jpeg_of(item: ImageItem, size: int, quality: int = JPEG_QUALITY) -> bytes:
    """``item``'s image shrunk to fit ``size`` x ``size`` (never enlarged), as JPEG bytes;
    ``InputError`` or ``OSError`` when it can no longer be read."""
    image = item.open().copy()
    image.thumbnail((size, size))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def short_names(image_set: ImageSet) -> list[str]:
    """Each item's path relative to the folder all the set's files share (its source otherwise).

    Keeps the names short on the page while telling apart equal file names in sub-folders.
    """
    folders = [os.path.dirname(os.path.abspath(item.path)) for item in image_set.items if item.path is not None]
    root = os.path.commonpath(folders) if folders else ""
    return [display_path(os.path.relpath(os.path.abspath(item.path), root)) if item.path is not None else item.source
            for item in image_set.items]


@dataclass(frozen=True)
class Tie:
    """Images shown at the cut of a gallery whose score images left out share: which of them
    is shown is set order, not evidence."""

    score: float
    shown: int
    left_out: int

    def __str__(self) -> str:
        images = "image" if self.shown == 1 else "images"
        return f"{self.shown} {images} tied at {self.score:.4f} with {self.left_out} others; shown in set order"


@dataclass(frozen=True)
class Gallery:
    """The images shown of one set for a hypothesis, and the tie at the cut if there is one."""

    images: list[EvidenceImage]
    tie: Tie | None = None


def tie_at_cut(scores: np.ndarray, order: np.ndarray, k: int) -> Tie | None:
    """The tie between the last of the ``k`` first images of ``order`` and images after them
    (None when none: NaN scores tie with nothing)."""
    shown, left_out = scores[order[:k]], scores[order[k:]]
    if not len(shown) or not len(left_out):
        return None
    cut = shown[-1]
    n_left_out = int(np.sum(left_out == cut))
    return Tie(score=float(cut), shown=int(np.sum(shown == cut)), left_out=n_left_out) if n_left_out else None


def top_images(image_set: ImageSet, scores: np.ndarray, captions: dict[str, str], *, k: int,
               thumbnails: ThumbnailCache, names: list[str], lowest: bool = False) -> Gallery:
    """The ``k`` images of ``image_set`` with the highest ``scores`` (one per item), best first;
    with ``lowest``, those with the lowest scores, lowest first. NaN scores come last. Equal
    scores keep set order, and a tie across the cut is said (:class:`Tie`).

    ``names`` are the display names of the items (:func:`short_names`).
    """
    ordering = np.nan_to_num(scores, nan=np.inf) if lowest else -np.nan_to_num(scores, nan=-np.inf)
    order = np.argsort(ordering, kind="stable")
    shown = []
    for i in order[:k]:
        item = image_set.items[i]
        uri, error = thumbnails.get(item)
        shown.append(EvidenceImage(
            source=item.source, name=names[i], score=float(scores[i]),
            caption=captions.get(item.key, ""), data_uri=uri, error=error,
        ))
    return Gallery(images=shown, tie=tie_at_cut(scores, order, k))
