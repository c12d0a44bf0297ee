"""A list of in-memory PIL images (Python API)."""

from __future__ import annotations

from PIL import Image

from visdiff.decoding import hash_pil, to_rgb
from visdiff.image_sets import ImageSet
from visdiff.sources.base import Candidate, LoadOptions, assemble


def accepts(source) -> bool:
    return isinstance(source, list) and bool(source) and all(isinstance(x, Image.Image) for x in source)


def load(images: list[Image.Image], options: LoadOptions) -> ImageSet:
    return assemble((_candidate(i, image) for i, image in enumerate(images)), name=options.name or "")


def _candidate(position: int, image: Image.Image) -> Candidate:
    """Keyed by the RGB pixels that will be embedded: the raw pixels alone would give two
    images with the same palette indices or EXIF-rotated copies the same key."""
    source = f"<image {position}>"
    try:
        return Candidate(source, (hash_pil(to_rgb(image)), ""), image=image)
    except (OSError, ValueError) as e:
        return Candidate(source, (None, f"cannot convert {image.mode} image to RGB ({e})"))
