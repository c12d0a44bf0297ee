"""Cheaper pixels for the embedding path, same result as the scorer's own preprocessing.

A CLIP/timm eval transform is ``[PIL resize/crop steps..., ToTensor, Normalize]`` (Normalize
optional). Split
there, data-loader workers do only the PIL steps and ship uint8 tensors (4x less data to
move, no float work per image); the main process scales and normalises whole batches on the
scorer's device. JPEGs are decoded at reduced scale (``Image.draft``) when that still leaves
at least the resize target, which cuts decoding cost by up to 4-16x on large photos.

The same resize and crop steps also run as tensor ops (``resize_tensors``) on images decoded
on the device (:mod:`visdiff.embeddings.jpeg`). PIL resizes in two passes, width then height,
rounding to uint8 in between; a resize in one float pass differs from it by up to 23 levels
of 255 at sharp edges (17% of values off by one on devbench's photos), so the tensor resize
takes the same two passes, each rounded (max 2 levels, 99.9% of values equal).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image


@dataclass(frozen=True)
class SplitTransform:
    """``pil_steps`` (picklable, run in workers) + batched ``normalize`` on the device;
    ``tensor_steps``: the resize and crop steps of ``pil_steps``, in order, for tensors."""

    pil_steps: Callable[[Image.Image], Image.Image]
    tensor_steps: tuple
    mean: tuple[float, ...]
    std: tuple[float, ...]
    draft_size: int | None

    def to_uint8(self, image: Image.Image) -> torch.Tensor:
        """(3, H, W) uint8 tensor after the PIL steps."""
        array = np.asarray(self.pil_steps(image).convert("RGB"))
        return torch.from_numpy(array.copy()).permute(2, 0, 1)

    def resize_tensors(self, images: list[torch.Tensor]) -> list[torch.Tensor]:
        """uint8 (3, H, W) tensors -> uint8 (3, h, w) after the resize and crop steps, in
        order; images of one size go through them as one batch."""
        from torchvision.transforms import Resize

        by_size: dict[tuple[int, ...], list[int]] = {}
        for i, image in enumerate(images):
            by_size.setdefault(tuple(image.shape), []).append(i)
        out: list[torch.Tensor | None] = [None] * len(images)
        for positions in by_size.values():
            batch = torch.stack([images[i] for i in positions])
            for step in self.tensor_steps:
                batch = _resize_like_pil(batch, step) if isinstance(step, Resize) else step(batch)
            for i, resized in zip(positions, batch):
                out[i] = resized
        return out

    def normalize(self, pixels: torch.Tensor, device: torch.device) -> torch.Tensor:
        """uint8 (n, 3, H, W) batch -> normalised float32 on ``device``."""
        pixels = pixels.to(device, non_blocking=True).float().div_(255.0)
        mean = torch.tensor(self.mean, device=device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, device=device).view(1, -1, 1, 1)
        return pixels.sub_(mean).div_(std)


def _resized_size(height: int, width: int, resize) -> tuple[int, int]:
    """The (height, width) ``resize`` gives an image of that size (torchvision's rule)."""
    size = [resize.size] if isinstance(resize.size, int) else list(resize.size)
    if len(size) == 2:
        return size[0], size[1]
    short, long = sorted((height, width))
    new_short, new_long = size[0], int(size[0] * long / short)
    if resize.max_size is not None and new_long > resize.max_size:
        new_short, new_long = int(resize.max_size * new_short / new_long), resize.max_size
    return (new_long, new_short) if width <= height else (new_short, new_long)


def _resize_like_pil(batch: torch.Tensor, resize) -> torch.Tensor:
    """uint8 (n, 3, H, W) resized as PIL does: the width first, then the height, each pass
    rounded to uint8."""
    from torchvision.transforms import functional

    height, width = batch.shape[-2:]
    new_height, new_width = _resized_size(height, width, resize)
    if new_width != width:
        batch = functional.resize(batch, [height, new_width], resize.interpolation, antialias=True)
    if new_height != height:
        batch = functional.resize(batch, [new_height, new_width], resize.interpolation, antialias=True)
    return batch


def _draft_size(step) -> int | None:
    size = getattr(step, "size", None)
    if isinstance(size, int):
        return size
    if isinstance(size, (tuple, list)) and size:
        return max(size)
    return None


def split_transform(preprocess) -> SplitTransform | None:
    """Split a torchvision ``Compose`` ending in ToTensor (+ Normalize); ``None`` if it does not."""
    from torchvision.transforms import CenterCrop, Compose, Normalize, Resize

    steps = list(getattr(preprocess, "transforms", None) or [])
    if not isinstance(preprocess, Compose) or not steps:
        return None
    normalize = steps.pop() if isinstance(steps[-1], Normalize) else None
    if not steps or not type(steps[-1]).__name__.endswith("ToTensor"):
        return None
    pil_steps = steps[:-1]
    # Only steps known to act on PIL images alone (and RGB-mode conversions) run in workers.
    if not all(isinstance(s, (Resize, CenterCrop)) or "Convert" in type(s).__name__ for s in pil_steps):
        return None
    resize = next((s for s in pil_steps if isinstance(s, Resize)), None)
    return SplitTransform(
        pil_steps=Compose(pil_steps),
        tensor_steps=tuple(s for s in pil_steps if isinstance(s, (Resize, CenterCrop))),
        mean=tuple(float(m) for m in normalize.mean) if normalize else (0.0, 0.0, 0.0),
        std=tuple(float(s) for s in normalize.std) if normalize else (1.0, 1.0, 1.0),
        draft_size=_draft_size(resize) if resize is not None else None,
    )
