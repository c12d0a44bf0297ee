"""Encoded images -> RGB: which names are images, header checks, full decoding, content hashes.

Every source of images (folders, tables, tar shards) identifies an image by the SHA-256 of
its encoded bytes and decodes it here, so the same bytes give the same key and the same
pixels wherever they were read from.
"""

from __future__ import annotations

import hashlib
import io
import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from visdiff.errors import InputError

# Files with these extensions are taken as images; a folder's other files are identified by
# their content (a JPEG without an extension is still a JPEG).
IMAGE_EXTENSIONS = frozenset({
    ".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".apng", ".webp", ".bmp", ".dib", ".gif", ".tif", ".tiff",
    ".avif", ".avifs", ".ico", ".ppm", ".pgm", ".pbm", ".pnm", ".tga", ".qoi", ".jp2", ".j2k", ".jpx",
})

BOMB_REASON = "refused, too many pixels (decompression bomb?)"

# What PIL raises on bytes it cannot parse as an image.
_UNREADABLE = (OSError, SyntaxError, ValueError)


def has_image_extension(name: str | os.PathLike) -> bool:
    return Path(name).suffix.lower() in IMAGE_EXTENSIONS


def hash_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def hash_pil(image: Image.Image) -> str:
    """Content hash of an in-memory image: mode, size and pixels."""
    h = hashlib.sha256(f"{image.mode}:{image.size[0]}x{image.size[1]}:".encode())
    h.update(image.tobytes())
    return h.hexdigest()


def to_rgb(image: Image.Image) -> Image.Image:
    """EXIF orientation applied; palette, alpha, CMYK, 16-bit and greyscale made 8-bit RGB."""
    image = ImageOps.exif_transpose(image)
    if image.mode == "RGB":
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # 16/32-bit greyscale: scale to 8 bits rather than clipping at 255.
        import numpy as np

        arr = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") else max(arr.max(), 1.0)
        image = Image.fromarray(np.clip(arr / top * 255.0, 0, 255).astype("uint8"), "L")
    if image.mode == "P" or image.mode == "PA":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA"):
        # Transparent areas become white, as they look in a viewer, not black.
        background = Image.new("RGB", image.size, (255, 255, 255))
        background.paste(image.convert("RGBA"), mask=image.convert("RGBA").getchannel("A"))
        return background
    return image.convert("RGB")


@contextmanager
def refuse_bombs() -> Iterator[None]:
    """PIL's decompression-bomb warning raised as an error: images above
    ``Image.MAX_IMAGE_PIXELS`` (~89 Mpx) are refused, not only those above twice it (where
    PIL itself raises). PIL's other warnings (corrupt EXIF, odd TIFF tags) are silenced: a
    file that cannot be used is reported once, with its reason."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        yield


@contextmanager
def _silence_libtiff(image: Image.Image) -> Iterator[None]:
    """libtiff prints its decoding errors straight to the process's stderr (file descriptor 2),
    past Python; while a TIFF decodes, that descriptor points at /dev/null. The failure itself
    still raises, and is reported with the file as skipped."""
    if image.format != "TIFF":
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def decode_image_bytes(data: bytes, *, source: str = "<bytes>", min_size: int | None = None) -> Image.Image:
    """Fully decode ``data`` into RGB, or raise ``InputError`` naming ``source`` and the reason.

    With ``min_size``, JPEGs are decoded at the smallest DCT scale (1/2, 1/4, 1/8) whose
    sides are still at least ``min_size``.
    """
    if not data:
        raise InputError(f"{source}: empty file")
    try:
        with refuse_bombs():
            image = Image.open(io.BytesIO(data))
            if min_size and image.format == "JPEG":
                image.draft("RGB", (min_size, min_size))
            with _silence_libtiff(image):
                image.load()
            return to_rgb(image)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise InputError(f"{source}: {BOMB_REASON}") from e
    except UnidentifiedImageError as e:
        raise InputError(f"{source}: not an image file") from e
    except _UNREADABLE as e:
        raise InputError(f"{source}: unreadable image ({e})") from e


def probe_image_bytes(data: bytes) -> tuple[str | None, str]:
    """(content hash, '') for bytes whose header PIL recognises, else (None, reason).

    Only the header is parsed (cheap); bytes cut after it pass here and fail when decoded for
    embedding, which records them as skipped too.
    """
    if not data:
        return None, "empty file"
    try:
        with refuse_bombs(), Image.open(io.BytesIO(data)) as image:
            image.size  # noqa: B018 - header parsed; full decode happens when the image is used
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        return None, BOMB_REASON
    except UnidentifiedImageError:
        return None, "not an image file"
    except _UNREADABLE as e:
        return None, f"unreadable image ({e})"
    return hash_bytes(data), ""


def is_image_file(path: Path) -> bool:
    """Whether PIL recognises the header of the file at ``path`` (read no further)."""
    try:
        with refuse_bombs(), Image.open(path):
            return True
    except (*_UNREADABLE, Image.DecompressionBombError, Image.DecompressionBombWarning):
        return False
