"""Image sets: the data model every source of images builds (:mod:`visdiff.sources`).

An image is identified by the SHA-256 of its encoded bytes, never by where it was read, so
renamed or copied files share cache entries and edited files never reuse stale ones. Where
the bytes are is the item's *locator* (a file, a member of a tar shard): small and picklable,
so the workers of any engine can read the image again.

An image hashed while a set is loaded keeps the bytes that were hashed (up to
:data:`HELD_BYTES_PER_SET` per set) until the set is embedded: decoding uses them, so a cold
run reads each image once, and the pixels embedded are those of the hashed content even if
the file changes in between. Images whose hash came from the hash memo are not read when loading.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from itertools import combinations
from pathlib import Path
from typing import Protocol

from PIL import Image

from visdiff.decoding import decode_image_bytes, to_rgb
from visdiff.errors import InputError, display_text

log = logging.getLogger(__name__)


def display_path(path: Path | str) -> str:
    """``path`` as printable text: bytes that are not UTF-8 in a file name (kept by Python as
    surrogates) and control characters are shown as ``\\xNN`` escapes, so the name can go
    into any output file or message."""
    text = os.fspath(path)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = os.fsencode(text).decode("utf-8", errors="backslashreplace")
    return display_text(text)


def read_bytes(path: Path) -> bytes:
    """A whole file: the one place image files are read (the tests count the reads here)."""
    return Path(path).read_bytes()


class Locator(Protocol):
    """Where an image's encoded bytes are; picklable (engine workers read it) and hashable."""

    @property
    def file(self) -> Path:
        """The file on disk holding the bytes: its ``stat`` says whether they may have changed."""

    @property
    def memo_key(self) -> bytes:
        """What names these bytes in the hash memo (:mod:`visdiff.file_hashes`)."""

    @property
    def label(self) -> str:
        """How messages and results name the image (its ``ImageItem.source``)."""

    def read(self) -> bytes:
        """The encoded image; ``OSError`` when it cannot be read."""


@dataclass(frozen=True)
class FileLocator:
    """An image that is a whole file."""

    file: Path

    @property
    def memo_key(self) -> bytes:
        return os.fsencode(os.path.abspath(self.file))

    @property
    def label(self) -> str:
        return display_path(self.file)

    def read(self) -> bytes:
        return read_bytes(self.file)


@dataclass(frozen=True)
class ImageItem:
    """One image of a set: its content hash, a name for messages (``source``), and where its
    bytes are (``locator``; for a whole file also ``path``: give either), or the bytes
    themselves, or an in-memory PIL image."""

    key: str
    source: str
    path: Path | None = None
    image: Image.Image | None = field(default=None, compare=False, repr=False)
    # The encoded image itself: for images stored in a table rather than on disk, or the
    # bytes read when it was hashed (held until the set is embedded).
    data: bytes | None = field(default=None, compare=False, repr=False)
    # The table row's key pairing it with images of the other set (--pair-by), if any.
    pair_key: str | None = None
    locator: Locator | None = None

    def __post_init__(self) -> None:
        if self.locator is None and self.path is not None:
            object.__setattr__(self, "locator", FileLocator(Path(self.path)))
        elif self.path is None and isinstance(self.locator, FileLocator):
            object.__setattr__(self, "path", self.locator.file)

    def open(self, *, min_size: int | None = None) -> Image.Image:
        """Decode to an RGB image (EXIF orientation applied). Raises ``InputError`` if unreadable.

        ``min_size``: a JPEG may be decoded at a reduced scale that keeps both sides at least
        this long (much cheaper for photos far larger than a model's input).
        """
        if self.image is not None:
            try:
                return to_rgb(self.image)
            except (OSError, ValueError) as e:
                raise InputError(f"{self.source}: cannot convert {self.image.mode} image to RGB ({e})") from e
        return decode_image_bytes(self.read(), source=self.source, min_size=min_size)

    def read(self) -> bytes:
        """The encoded image. Raises ``InputError`` if it cannot be read."""
        if self.data is not None:
            return self.data
        if self.locator is None:
            raise InputError(f"{self.source}: an in-memory image has no encoded bytes")
        try:
            return self.locator.read()
        except OSError as e:
            raise InputError(f"{self.source}: cannot read file ({e.strerror or e})") from e


@dataclass(frozen=True)
class SkippedImage:
    source: str
    reason: str


@dataclass(frozen=True)
class ImageSet:
    """An ordered set of readable images plus the inputs that were skipped, with reasons."""

    items: tuple[ImageItem, ...]
    skipped: tuple[SkippedImage, ...] = ()
    name: str = ""

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self):
        return iter(self.items)

    @property
    def keys(self) -> list[str]:
        return [item.key for item in self.items]

    def drop(self, reasons: Mapping[int, str], *, warn: bool = True) -> ImageSet:
        """A copy without the items at the positions in ``reasons``, recorded as skipped
        (with one warning each unless ``warn=False``, for failures already reported)."""
        if not reasons:
            return self
        # Decode errors read "<source>: <reason>"; keep the source once, in its own field.
        reasons = {i: r.removeprefix(f"{self.items[i].source}: ") for i, r in reasons.items()}
        for i in sorted(reasons) if warn else ():
            log.warning("skipping %s: %s", self.items[i].source, reasons[i])
        return replace(
            self,
            items=tuple(it for i, it in enumerate(self.items) if i not in reasons),
            skipped=self.skipped
            + tuple(SkippedImage(self.items[i].source, reasons[i]) for i in sorted(reasons)),
        )

    def release_bytes(self) -> ImageSet:
        """A copy whose located images no longer hold the bytes read when they were hashed (a
        later decode reads them again); images stored in a table keep theirs."""
        if not any(it.locator is not None and it.data is not None for it in self.items):
            return self
        return replace(self, items=tuple(replace(it, data=None) if it.locator is not None else it
                                         for it in self.items))

    def subset(self, positions: Sequence[int]) -> ImageSet:
        """The items at ``positions`` in that order (skipped inputs are kept as the record)."""
        return replace(self, items=tuple(self.items[i] for i in positions))

    def warn_of_repeats(self) -> None:
        """Warn when the set holds an image more than once (same content): every copy counts
        in the statistics as an image of its own, so p-values come out smaller than the
        distinct images support."""
        counts = Counter(self.keys)
        repeats = sum(n - 1 for n in counts.values())
        if repeats:
            key = next(k for k, n in counts.items() if n > 1)
            first, second = [item.source for item in self.items if item.key == key][:2]
            log.warning("image set %r holds %d image(s) more than once (same content, e.g. %s and %s); each copy "
                        "counts in the statistics", self.name, repeats, first, second)

    def require(self, min_images: int = 2) -> ImageSet:
        if len(self.items) < min_images:
            what = f"image set {self.name!r}" if self.name else "image set"
            detail = f" ({len(self.skipped)} unreadable files skipped)" if self.skipped else ""
            raise InputError(
                f"{what} has {len(self.items)} readable image(s){detail}; at least {min_images} needed"
            )
        return self


def warn_shared_images(image_sets: Sequence[ImageSet]) -> dict[str, int]:
    """Images (by content) held by two sets, per pair of set names; one warning per pair."""
    shared = {}
    for first, second in combinations(image_sets, 2):
        common = set(first.keys) & set(second.keys)
        if common:
            log.warning("sets %r and %r share %d image(s) (same content); each counts in both sets",
                        first.name, second.name, len(common))
            shared[f"{first.name} & {second.name}"] = len(common)
    return shared


# Bytes of freshly hashed images a set holds for decoding: enough for thousands of photos,
# bounded for huge sets (beyond it, images are read again when decoded).
HELD_BYTES_PER_SET = 512 * 2**20


class HeldBytes:
    """The bytes of images read for hashing, by locator, up to :data:`HELD_BYTES_PER_SET` in all."""

    def __init__(self) -> None:
        self.left = HELD_BYTES_PER_SET
        self.data: dict[Locator, bytes] = {}

    def keep(self, locator: Locator, data: bytes) -> None:
        if len(data) <= self.left:
            self.data[locator] = data
            self.left -= len(data)
