"""What every kind of image set shares: the load options, hashing located images (through
the hash memo) and assembling the :class:`ImageSet` from the candidates probed."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from PIL import Image

from visdiff.decoding import probe_image_bytes
from visdiff.file_hashes import FileHashMemo
from visdiff.image_sets import HeldBytes, ImageItem, ImageSet, Locator, SkippedImage, display_path
from visdiff.tables import DEFAULT_GROUP_COLUMN

log = logging.getLogger(__name__)

# (content hash, '') of a usable image, or (None, why it is not one).
Probed = tuple[str | None, str]


@dataclass(frozen=True)
class LoadOptions:
    """How :func:`visdiff.sources.load_image_set` was asked to load a set; row selection and
    pairing apply to tables only (``check_table_options`` refuses them for other sets)."""

    name: str | None = None
    hashes: FileHashMemo | None = None
    group: str | None = None
    group_column: str = DEFAULT_GROUP_COLUMN
    where: Mapping[str, str] | None = None
    pair_by: str | None = None


@dataclass(frozen=True)
class Candidate:
    """An input of a set as probed: its hash, or None and the reason it is not usable; where
    it is, or its bytes (read for the hash, or stored in a table), or the in-memory image;
    its pair key, if any."""

    source: str
    probed: Probed
    locator: Locator | None = None
    data: bytes | None = None
    image: Image.Image | None = None
    pair_key: str | None = None


def read_and_probe(locator: Locator, held: HeldBytes) -> Probed:
    """Read the located bytes and check their header; ``held`` keeps the bytes of images."""
    try:
        data = locator.read()
    except OSError as e:
        return None, f"cannot read file ({e.strerror or e})"
    probed = probe_image_bytes(data)
    if probed[0] is not None:
        held.keep(locator, data)
    return probed


def probe_located(locators: list[Locator], hashes: FileHashMemo | None,
                  probe: Callable[..., Probed] = read_and_probe) -> list[Candidate]:
    """``probe(locator, held=)`` every locator, through the hash memo where one is given; the
    bytes read are held for decoding, up to the set's budget."""
    held = HeldBytes()
    probe_one = partial(probe, held=held)
    probed = hashes.probe(locators, probe_one) if hashes is not None else [probe_one(it) for it in locators]
    return [Candidate(locator.label, result, locator, held.data.get(locator))
            for locator, result in zip(locators, probed)]


def assemble(candidates: Iterable[Candidate], *, name: str, skipped: Iterable[SkippedImage] = ()) -> ImageSet:
    """The usable candidates as the set's items; the others skipped with one warning each,
    after the ``skipped`` found before probing."""
    items: list[ImageItem] = []
    passed_over = list(skipped)
    for candidate in candidates:
        key, reason = candidate.probed
        if key is None:
            log.warning("skipping %s: %s", candidate.source, reason)
            passed_over.append(SkippedImage(candidate.source, reason))
        else:
            items.append(ImageItem(key=key, source=candidate.source, locator=candidate.locator,
                                   image=candidate.image, data=candidate.data, pair_key=candidate.pair_key))
    return ImageSet(tuple(items), tuple(passed_over), name=name)


def warn_of_non_images(sources: list[str], where: Path) -> None:
    """One warning for all the entries of ``where`` passed over as not images."""
    if sources:
        log.warning("skipping %d file(s) of %s that are not images: %s", len(sources), display_path(where),
                    ", ".join(sources[:3]) + (" ..." if len(sources) > 3 else ""))
