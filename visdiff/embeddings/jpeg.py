"""JPEGs decoded on the scorer's device: torchvision's batched ``decode_jpeg`` (nvjpeg on
CUDA), then the scorer's resize and crop as tensor ops there.

Data-loader workers only read the bytes and parse the header (:func:`device_decodable`):
JPEGs that PIL would treat differently (CMYK, an EXIF rotation, no end-of-image marker, so
possibly truncated) and every other format are decoded by the workers with PIL as before.
A JPEG the device cannot decode is decoded again with PIL from the same bytes, which either
succeeds (an unusual but valid file) or gives the reason it is skipped. The same calls run
on the CPU (libjpeg-turbo), so the tests exercise this path without a GPU.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence

import torch
from PIL import Image

from visdiff.embeddings.transforms import SplitTransform
from visdiff.errors import InputError
from visdiff.decoding import decode_image_bytes, refuse_bombs

JPEG_MAGIC = b"\xff\xd8\xff"
EXIF_ORIENTATION = 0x0112
DECODE_CHOICES = ("auto", "device", "workers")


def decodes_on_device(decode: str, device: torch.device) -> bool:
    """``decode`` ("auto": on the device when it is CUDA, "device", "workers") as a yes/no."""
    if decode not in DECODE_CHOICES:
        raise InputError(f"unknown decode setting {decode!r}; choose from {', '.join(DECODE_CHOICES)}")
    return decode == "device" or (decode == "auto" and device.type == "cuda")


def device_decodable(data: bytes) -> bool:
    """Whether ``data`` is a JPEG that decodes on the device to what PIL gives: RGB or
    greyscale, no EXIF rotation (``decode_jpeg`` applies it only on the CPU), ending in the
    end-of-image marker (a cut file goes to PIL, which refuses it), within the pixel limit."""
    if not data.startswith(JPEG_MAGIC) or not data.rstrip(b"\0").endswith(b"\xff\xd9"):
        return False
    try:
        with refuse_bombs(), Image.open(io.BytesIO(data)) as image:
            return (image.format == "JPEG" and image.mode in ("RGB", "L")
                    and image.getexif().get(EXIF_ORIENTATION, 1) == 1)
    except Exception:  # noqa: BLE001 - any header PIL rejects: PIL's decoding says why
        return False


def _decode(encoded: list[torch.Tensor], device: torch.device) -> list[torch.Tensor]:
    from torchvision.io import ImageReadMode, decode_jpeg

    with warnings.catch_warnings():
        # torchvision 0.29 deprecates its decoders in favour of torchcodec; they still work.
        warnings.simplefilter("ignore")
        return decode_jpeg(encoded, mode=ImageReadMode.RGB, device=device)


def decode_jpegs(files: Sequence[bytes], sources: Sequence[str], split: SplitTransform,
                 device: torch.device) -> tuple[list[torch.Tensor], dict[int, str]]:
    """Decode JPEG files' bytes on ``device`` in one batched call and resize and crop them
    there; returns one uint8 (3, h, w) tensor per decodable input (in order) and {index:
    reason} for those that failed. A batch the device refuses is retried image by image; an
    image it still refuses is decoded with PIL on the CPU."""
    if device.type == "cuda" and device.index is None:
        # Named explicitly: the GPU a bare "cuda" model runs on, whatever decode_jpeg assumes.
        device = torch.device("cuda", torch.cuda.current_device())
    encoded = [torch.frombuffer(bytearray(data), dtype=torch.uint8) for data in files]
    try:
        decoded: list[torch.Tensor | None] = list(_decode(encoded, device))
    except RuntimeError:
        decoded = []
        for data in encoded:
            try:
                decoded.append(_decode([data], device)[0])
            except RuntimeError:
                decoded.append(None)
    on_device = [i for i, image in enumerate(decoded) if image is not None]
    pixels = dict(zip(on_device, split.resize_tensors([decoded[i] for i in on_device])))
    failures: dict[int, str] = {}
    for i in (i for i, image in enumerate(decoded) if image is None):
        try:
            image = decode_image_bytes(files[i], source=sources[i], min_size=split.draft_size)
            pixels[i] = split.to_uint8(image).to(device)
        except InputError as e:
            failures[i] = str(e)
    return [pixels[i] for i in sorted(pixels)], failures
