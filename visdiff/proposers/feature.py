"""``blip2-feature`` proposer (the paper's feature-based ablation, "VLM feature proposer"): no
captions and no LLM. Each round, BLIP-2's query-token features (the language model's image
inputs) of A's sample and of B's are averaged, and the language model continues from the
difference of the two means as if it were an image: its captions of "what A has and B lacks"
are the phrases. As the reference: 20 + 20 images a round, 3 rounds, 10 phrases a round; the
reference's 10 calls of deterministic beam search repeat one text ten times, so the phrases
here are the 10 best beams of one search instead.

Spec: ``blip2-feature[:MODEL]``, a BLIP-2 hub id or local folder (default the reference's
``Salesforce/blip2-opt-2.7b``).
"""

from __future__ import annotations

import numpy as np
import torch

from visdiff.captioners.hf import BLIP2, continuation, load_vision_language_model
from visdiff.devices import auto_device, auto_dtype
from visdiff.errors import BackendError
from visdiff.image_sets import ImageSet
from visdiff.proposers import ProposalContext
from visdiff.proposers.chat import sample_positions, sampled_images

DEFAULT_MODEL = "Salesforce/blip2-opt-2.7b"
MAX_NEW_TOKENS = 30


class FeatureProposer:
    """Phrases decoded from the difference of mean BLIP-2 image features (module docstring)."""

    def __init__(self, model: str = DEFAULT_MODEL, *, rounds: int = 3, samples_per_set: int = 20,
                 n_hypotheses: int = 10, device: str | None = None) -> None:
        if rounds < 1 or samples_per_set < 1 or n_hypotheses < 1:
            raise ValueError(f"rounds, samples_per_set and n_hypotheses must be >= 1, got {rounds}, "
                             f"{samples_per_set}, {n_hypotheses}")
        self.model_name = model
        self.rounds, self.samples_per_set, self.n_hypotheses = rounds, samples_per_set, n_hypotheses
        self.device = auto_device(device)
        self.dtype = auto_dtype(self.device)
        self.spec = f"blip2-feature:{model}"
        self._loaded = None

    def describe(self) -> dict:
        return {"proposer": self.spec, "rounds": self.rounds, "samples_per_set": self.samples_per_set,
                "n_hypotheses": self.n_hypotheses, "decoding": f"{self.n_hypotheses} beams, {MAX_NEW_TOKENS} new tokens"}

    def propose(self, context: ProposalContext) -> list[str]:
        phrases: list[str] = []
        for round_index in range(self.rounds):
            rng = np.random.default_rng([context.seed, round_index])
            sample_a, sample_b = (image_set.subset(sample_positions(len(image_set), self.samples_per_set, rng))
                                  for image_set in (context.set_a, context.set_b))
            difference = self._mean_features(sample_a) - self._mean_features(sample_b)
            found = self._decode(difference)
            context.rounds.append({"round": round_index, "images_a": sampled_images(sample_a),
                                   "images_b": sampled_images(sample_b), "phrases": found})
            phrases += found
        return phrases

    def _load(self):
        if self._loaded is None:
            processor, model = load_vision_language_model(BLIP2, self.model_name, device=self.device, dtype=self.dtype)
            if getattr(model.config, "image_token_index", None) is None:
                raise BackendError(f"{self.spec}: the model's config has no image_token_index (a transformers "
                                   "BLIP-2 checkpoint from before 4.47); use an updated one")
            self._loaded = processor, model
        return self._loaded

    @torch.inference_mode()
    def _mean_features(self, sample: ImageSet) -> torch.Tensor:
        """The mean over ``sample`` of the (query tokens, hidden) inputs BLIP-2 gives its language model."""
        processor, model = self._load()
        pixels = processor.image_processor([item.open() for item in sample.items], return_tensors="pt")["pixel_values"]
        features = model.get_image_features(pixels.to(self.device, self.dtype)).pooler_output
        return features.float().mean(dim=0)

    @torch.inference_mode()
    def _decode(self, image_inputs: torch.Tensor) -> list[str]:
        """The language model's best ``n_hypotheses`` beams after ``image_inputs`` in the image
        tokens' places, as BLIP-2's own ``generate`` sets them."""
        processor, model = self._load()
        config = model.config
        ids = torch.tensor([[config.image_token_index] * config.num_query_tokens + [config.text_config.bos_token_id]],
                           device=self.device)
        embeds = model.get_input_embeddings()(ids)
        embeds[0, : config.num_query_tokens] = image_inputs.to(embeds.dtype)
        inputs = {"inputs_embeds": embeds, "attention_mask": torch.ones_like(ids)}
        if not model.language_model.config.is_encoder_decoder:
            inputs["input_ids"] = ids
        output = model.language_model.generate(**inputs, max_new_tokens=MAX_NEW_TOKENS, num_beams=self.n_hypotheses,
                                               num_return_sequences=self.n_hypotheses, do_sample=False)
        texts = processor.batch_decode(continuation(output, inputs), skip_special_tokens=True)
        return [" ".join(text.split()) for text in texts]


def _create_feature(model: str, **options) -> FeatureProposer:
    return FeatureProposer(model or DEFAULT_MODEL, **options)
