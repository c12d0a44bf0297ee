"""``llm`` proposer (the paper's method): captions of A and B samples -> a chat model -> phrases.

Each round samples ``samples_per_set`` images of A and of B (seeded), captions them (cached),
and asks the model for ``n_hypotheses`` short phrases more true of A than of B. Defaults as the
paper: 3 rounds of 20 + 20 captions. Spec: ``llm:MODEL`` for any OpenAI-compatible chat model.

Paired sets (``--pair-by``, :mod:`visdiff.pairs`): each round samples ``samples_per_set``
pairs instead and shows each pair's two captions side by side (template ``propose_paired``),
as the paper does for two diffusion models given the same prompts.
"""

from __future__ import annotations

import numpy as np

from visdiff.image_sets import ImageSet
from visdiff.proposers import ProposalContext
from visdiff.proposers.chat import ChatProposer, caption_lines, sample_positions, sampled_images

DEFAULT_LLM = "gpt-4o"


class LLMProposer(ChatProposer):
    """Chat model over sampled captions; the prompt gets ``$captions_a``, ``$captions_b``,
    ``$n_hypotheses`` (paired: ``$pairs`` and ``$n_hypotheses``)."""

    backend = "llm"

    def round_messages(self, context: ProposalContext, rng: np.random.Generator) -> tuple[list[dict], dict]:
        if context.pairs:
            return self._paired_messages(context, rng)
        shown_a, shown_b = self._captions(context, context.set_a, rng), self._captions(context, context.set_b, rng)
        text = self.prompt.render(captions_a=caption_lines(shown_a[1]), captions_b=caption_lines(shown_b[1]),
                                  captions=group_lines(shown_a[1], shown_b[1]), n_hypotheses=self.n_hypotheses)
        shown = {"images_a": shown_a[0], "images_b": shown_b[0], "captions_a": shown_a[1], "captions_b": shown_b[1]}
        return [{"role": "user", "content": text}], shown

    def _captions(self, context: ProposalContext, image_set: ImageSet, rng: np.random.Generator) -> tuple[list[dict], dict]:
        """The sampled images (key and source) and their captions, in sampled order."""
        sample = image_set.subset(sample_positions(len(image_set), self.samples_per_set, rng))
        captions = context.captioning.caption(sample)
        return sampled_images(sample), {key: captions[key] for key in sample.keys if key in captions}

    def _paired_messages(self, context: ProposalContext, rng: np.random.Generator) -> tuple[list[dict], dict]:
        """Sampled pairs, each shown as its A caption beside its B caption; a pair with an
        image the captioner could not describe is left out."""
        chosen = [context.pairs[i] for i in sample_positions(len(context.pairs), self.samples_per_set, rng)]
        sample_a = context.set_a.subset([a for a, _ in chosen])
        sample_b = context.set_b.subset([b for _, b in chosen])
        captions = {**context.captioning.caption(sample_a), **context.captioning.caption(sample_b)}
        shown = [(a, b) for a, b in zip(sample_a.items, sample_b.items) if a.key in captions and b.key in captions]
        prompt = self.template("propose_paired")
        text = prompt.render(pairs=_pair_lines([(a.pair_key, captions[a.key], captions[b.key]) for a, b in shown],
                                               context.pair_by),
                             n_hypotheses=self.n_hypotheses)
        record = {
            "images_a": sampled_images(sample_a), "images_b": sampled_images(sample_b),
            "captions_a": {a.key: captions[a.key] for a, _ in shown},
            "captions_b": {b.key: captions[b.key] for _, b in shown},
            "pair_by": context.pair_by,
            "pairs": [{"key": a.pair_key, "a": a.key, "b": b.key} for a, b in shown],
            "paired_prompt": prompt.record(),
        }
        return [{"role": "user", "content": text}], record


def _pair_lines(pairs: list[tuple[str, str, str]], pair_by: str | None) -> str:
    """Each pair under its key (the generation prompt both images were made from, say), then
    the captions of its A and B images."""
    return "\n".join(f"Pair {i}, {pair_by}: {' '.join(str(key).split())}\n  Group A: {' '.join(a.split())}\n"
                     f"  Group B: {' '.join(b.split())}" for i, (key, a, b) in enumerate(pairs, start=1))


def group_lines(captions_a: dict[str, str], captions_b: dict[str, str]) -> str:
    """Every caption on a line of its own that starts with its group's name, A's then B's."""
    return "\n".join(f"Group {group}: {' '.join(caption.split())}"
                     for group, captions in (("A", captions_a), ("B", captions_b)) for caption in captions.values())


def _create_llm(model: str, **options) -> LLMProposer:
    # Options: see ChatProposer.create (rounds, samples_per_set, base_url, prompt, ...).
    return LLMProposer.create(model or DEFAULT_LLM, **{"prompt": "propose", "samples_per_set": 20, **options})
