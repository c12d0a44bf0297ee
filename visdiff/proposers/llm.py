"""``llm`` proposer (the paper's method): captions of A and B samples -> a chat model -> phrases.

Each round samples ``samples_per_set`` images of A and of B (seeded), captions them (cached),
and asks the model for ``n_hypotheses`` short phrases more true of A than of B. Defaults as the
paper: 3 rounds of 20 + 20 captions. Spec: ``llm:MODEL`` for any OpenAI-compatible chat model.
"""

from __future__ import annotations

import numpy as np

from visdiff.image_sets import ImageSet
from visdiff.proposers import PROPOSERS, ProposalContext
from visdiff.proposers.chat import ChatProposer, sample_positions

DEFAULT_LLM = "gpt-4o"


class LLMProposer(ChatProposer):
    """Chat model over sampled captions; the prompt gets ``$captions_a``, ``$captions_b``, ``$n_hypotheses``."""

    backend = "llm"

    def round_messages(self, context: ProposalContext, rng: np.random.Generator) -> list[dict]:
        text = self.prompt.render(
            captions_a=self._caption_lines(context, context.set_a, rng),
            captions_b=self._caption_lines(context, context.set_b, rng),
            n_hypotheses=self.n_hypotheses,
        )
        return [{"role": "user", "content": text}]

    def _caption_lines(self, context: ProposalContext, image_set: ImageSet, rng: np.random.Generator) -> str:
        sample = image_set.subset(sample_positions(len(image_set), self.samples_per_set, rng))
        captions = context.captioning.caption(sample)
        # One line per caption, whatever the captioner emitted.
        return "\n".join(f"- {' '.join(captions[key].split())}" for key in sample.keys if key in captions)


@PROPOSERS.register("llm")
def _create_llm(model: str, **options) -> LLMProposer:
    # Options: see ChatProposer.create (rounds, samples_per_set, base_url, prompt, ...).
    return LLMProposer.create(model or DEFAULT_LLM, **{"prompt": "propose", "samples_per_set": 20, **options})
