"""Token estimates of chat requests before they are sent (``--dry-run``).

No tokenizer of the hosted models ships offline, so text counts one token per
:data:`CHARS_PER_TOKEN` characters (the usual figure for English under GPT-class tokenizers),
and an image as OpenAI's vision models count it at their default (high) detail, its size read
from its header (:func:`image_sizes`).
The closing figures in benchmarks/README.md compare these estimates with measured usage.
"""

from __future__ import annotations

import base64
import io
import math

from PIL import Image

from visdiff.errors import InputError
from visdiff.image_sets import ImageItem

CHARS_PER_TOKEN = 4
# Longest side of an image sent in a chat request (:func:`visdiff.llm.client.image_content`).
IMAGE_MAX_SIDE = 1024
# Per message: role and separators, as OpenAI's chat format adds them.
MESSAGE_OVERHEAD_TOKENS = 4
# Vision: the image fitted in 2048 x 2048, its short side scaled to 768, then 170 tokens per
# 512-pixel tile plus 85.
IMAGE_BASE_TOKENS, IMAGE_TILE_TOKENS, IMAGE_TILE = 85, 170, 512


def text_tokens(text: str) -> int:
    """>>> text_tokens("dogs playing in the snow")
    6
    """
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def image_tokens(width: int, height: int) -> int:
    """Tokens of one image at high detail.

    >>> image_tokens(1024, 768), image_tokens(512, 512)
    (765, 255)
    """
    scale = min(1.0, 2048 / max(width, height))
    width, height = width * scale, height * scale
    scale = min(1.0, 768 / min(width, height))
    width, height = width * scale, height * scale
    tiles = math.ceil(width / IMAGE_TILE) * math.ceil(height / IMAGE_TILE)
    return IMAGE_BASE_TOKENS + IMAGE_TILE_TOKENS * tiles


def sent_image_tokens(width: int, height: int) -> int:
    """Tokens of an image of this size once shrunk to :data:`IMAGE_MAX_SIDE` to be sent."""
    scale = min(1.0, IMAGE_MAX_SIDE / max(width, height, 1))
    return image_tokens(round(width * scale), round(height * scale))


def message_tokens(messages: list[dict]) -> int:
    """Estimated prompt tokens of a chat request: text parts by length, image parts (data
    URLs, as :func:`visdiff.llm.client.image_content` makes them) by their size."""
    total = 0
    for message in messages:
        total += MESSAGE_OVERHEAD_TOKENS
        content = message["content"]
        for part in [{"type": "text", "text": content}] if isinstance(content, str) else content:
            if part.get("type") == "text":
                total += text_tokens(part["text"])
            elif part.get("type") == "image_url":
                total += image_tokens(*_data_url_size(part["image_url"]["url"]))
    return total


def _data_url_size(url: str) -> tuple[int, int]:
    """Width and height of a base64 data URL's image (its header only is decoded)."""
    with Image.open(io.BytesIO(base64.b64decode(url.partition(",")[2]))) as image:
        return image.size


def image_sizes(items: list[ImageItem]) -> list[tuple[int, int]]:
    """Width and height of each image that can be read, from its header; an image that cannot
    be read is left out, as the run skips it (sends nothing for it)."""
    sizes = []
    for item in items:
        if item.image is not None:
            sizes.append(item.image.size)
            continue
        try:
            with Image.open(io.BytesIO(item.read())) as image:
                sizes.append(image.size)
        except (InputError, OSError, ValueError, Image.DecompressionBombError):
            continue
    return sizes
