"""``llm`` proposer (the paper's method): captions of A and B samples -> a chat model -> phrases.

Each round samples ``samples_per_set`` images of A and of B (seeded), captions them (cached),
and asks the model for ``n_hypotheses`` short phrases more true of A than of B. Defaults as the
paper: 3 rounds of 20 + 20 captions. Spec: ``llm:MODEL`` for any OpenAI-compatible chat model.
"""

from __future__ import annotations

import numpy as np

from visdiff.image_sets import ImageSet
from visdiff.proposers import PROPOSERS, ProposalContext
from visdiff.proposers.chat import ChatProposer, sample_positions, sampled_images

DEFAULT_LLM = "gpt-4o"


class LLMProposer(ChatProposer):
    """Chat model over sampled captions; the prompt gets ``$captions_a``, ``$captions_b``, ``$n_hypotheses``."""

    backend = "llm"

    def round_messages(self, context: ProposalContext, rng: np.random.Generator) -> tuple[list[dict], dict]:
        shown_a, shown_b = self._captions(context, context.set_a, rng), self._captions(context, context.set_b, rng)
        text = self.prompt.render(captions_a=_caption_lines(shown_a[1]), captions_b=_caption_lines(shown_b[1]),
                                  n_hypotheses=self.n_hypotheses)
        shown = {"images_a": shown_a[0], "images_b": shown_b[0], "captions_a": shown_a[1], "captions_b": shown_b[1]}
        return [{"role": "user", "content": text}], shown

    def _captions(self, context: ProposalContext, image_set: ImageSet, rng: np.random.Generator) -> tuple[list[dict], dict]:
        """The sampled images (key and source) and their captions, in sampled order."""
        sample = image_set.subset(sample_positions(len(image_set), self.samples_per_set, rng))
        captions = context.captioning.caption(sample)
        return sampled_images(sample), {key: captions[key] for key in sample.keys if key in captions}


def _caption_lines(captions: dict[str, str]) -> str:
    # One line per caption, whatever the captioner emitted.
    return "\n".join(f"- {' '.join(caption.split())}" for caption in captions.values())


@PROPOSERS.register("llm")
def _create_llm(model: str, **options) -> LLMProposer:
    # Options: see ChatProposer.create (rounds, samples_per_set, base_url, prompt, ...).
    return LLMProposer.create(model or DEFAULT_LLM, **{"prompt": "propose", "samples_per_set": 20, **options})
