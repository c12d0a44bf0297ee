"""``vlm`` proposer (the paper's GPT-4V variant): a labelled grid of A and B samples -> a vision
chat model -> phrases. Spec: ``vlm:MODEL`` for any OpenAI-compatible vision chat model.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps

from visdiff.image_sets import ImageSet
from visdiff.llm import image_content
from visdiff.proposers import ProposalContext
from visdiff.proposers.chat import ChatProposer, sample_positions, sampled_images

DEFAULT_VLM = "gpt-4o"
LABEL_WIDTH = 64
GAP = 8
ROWS_PER_SET = 2


def _band(images: Sequence[Image.Image], label: str, *, cell: int, columns: int) -> Image.Image:
    """One labelled band: ``label`` in a left margin, the images as a grid of square cells."""
    rows = -(-len(images) // columns)
    band = Image.new("RGB", (LABEL_WIDTH + columns * (cell + GAP), rows * (cell + GAP) + GAP), "white")
    for i, image in enumerate(images):
        row, col = divmod(i, columns)
        band.paste(ImageOps.pad(image, (cell, cell), color="white"),
                   (LABEL_WIDTH + col * (cell + GAP), GAP + row * (cell + GAP)))
    draw = ImageDraw.Draw(band)
    draw.text((LABEL_WIDTH // 2, band.height // 2), label, fill="black", anchor="mm",
              font=ImageFont.load_default(size=48))
    return band


def make_grid(images_a: Sequence[Image.Image], images_b: Sequence[Image.Image], *, cell: int = 192,
              rows_per_set: int = ROWS_PER_SET) -> Image.Image:
    """Band "A" above band "B", separated by a black rule, each ``rows_per_set`` rows of images
    (the reference shows 20 + 20 images in 4 rows: A's in the first two, B's in the last two)."""
    columns = max(1, -(-max(len(images_a), len(images_b)) // rows_per_set))
    band_a = _band(images_a, "A", cell=cell, columns=columns)
    band_b = _band(images_b, "B", cell=cell, columns=columns)
    grid = Image.new("RGB", (max(band_a.width, band_b.width), band_a.height + band_b.height + 4), "black")
    grid.paste(band_a, (0, 0))
    grid.paste(band_b, (0, band_a.height + 4))
    return grid


class VLMProposer(ChatProposer):
    """Vision chat model over a grid image; the prompt gets ``$n_hypotheses``, the images shown
    of each set (``$n_a``, ``$n_b``) and the rows of each band (``$rows``)."""

    backend = "vlm"

    def round_messages(self, context: ProposalContext, rng: np.random.Generator) -> tuple[list[dict], dict]:
        sample_a, sample_b = self._sample(context.set_a, rng), self._sample(context.set_b, rng)
        grid = make_grid([item.open() for item in sample_a.items], [item.open() for item in sample_b.items])
        text = self.prompt.render(n_hypotheses=self.n_hypotheses, n_a=len(sample_a), n_b=len(sample_b),
                                  rows=ROWS_PER_SET)
        messages = [{"role": "user", "content": [{"type": "text", "text": text}, image_content(grid, max_side=2048)]}]
        return messages, {"images_a": sampled_images(sample_a), "images_b": sampled_images(sample_b)}

    def _sample(self, image_set: ImageSet, rng: np.random.Generator) -> ImageSet:
        return image_set.subset(sample_positions(len(image_set), self.samples_per_set, rng))


def _create_vlm(model: str, **options) -> VLMProposer:
    # Options: see ChatProposer.create. 20 images a set, as the paper's grid: 2 rows of 10 each.
    return VLMProposer.create(model or DEFAULT_VLM, **{"prompt": "propose_vlm", "samples_per_set": 20, "timeout": 120.0,
                                                        **options})
