"""Hugging Face ``transformers`` captioners: ``blip2``, ``llava`` and any ``hf`` image-to-text model.

Specs (the model may be a hub id or a local folder saved with ``save_pretrained``):

- ``blip2[:MODEL]`` — ``Blip2ForConditionalGeneration``; default the paper's
  ``Salesforce/blip2-flan-t5-xxl`` (12B parameters: a GPU with ~24 GB in fp16), smaller ones
  such as ``Salesforce/blip2-opt-2.7b`` work the same way;
- ``llava[:MODEL]`` — ``LlavaForConditionalGeneration``, default ``llava-hf/llava-1.5-7b-hf``;
  the prompt goes through the processor's chat template (or LLaVA-1.5's ``USER: <image>\\n...
  ASSISTANT:`` format when the processor has none);
- ``hf:MODEL`` — any ``AutoModelForImageTextToText`` model, e.g.
  ``Salesforce/blip-image-captioning-base`` (CPU-friendly). No prompt unless one is given;
  with a prompt, chat models get their chat template.

One ``generate`` call per batch; greedy decoding unless told otherwise (``num_beams`` for beam
search, ``temperature`` > 0 for sampling: the paper profile decodes BLIP-2 with 5 beams and at
most 30 new tokens, and samples LLaVA at temperature 0.2); device and dtype chosen
automatically (fp16 on GPU, fp32 on CPU). The echoed prompt is cut from decoder-only outputs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import torch
from PIL import Image

from visdiff.errors import BackendError
from visdiff.hub import hub_loading
from visdiff.prompts import load_prompt
from visdiff.devices import auto_device, auto_dtype
from visdiff.registry import require


@dataclass(frozen=True)
class ModelFamily:
    """How one backend loads and prompts its models."""

    backend: str
    model_class: str
    default_model: str
    # Name of the built-in prompt used when none is given; "" means caption without a prompt.
    default_prompt: str
    # Prompt format used when the processor has no chat template ("{prompt}" is replaced).
    fallback_template: str = "{prompt}"
    # Format of a question (VQA) when the processor has no chat template; None: fallback_template.
    question_template: str | None = None


BLIP2 = ModelFamily("blip2", "Blip2ForConditionalGeneration", "Salesforce/blip2-flan-t5-xxl", "caption",
                    question_template="Question: {prompt} Answer:")
LLAVA = ModelFamily("llava", "LlavaForConditionalGeneration", "llava-hf/llava-1.5-7b-hf", "caption",
                    fallback_template="USER: <image>\n{prompt} ASSISTANT:")
GENERIC = ModelFamily("hf", "AutoModelForImageTextToText", "", "")


def weights_fingerprint(model: str) -> str:
    """Names, sizes and mtimes of the files of ``model`` when it is a local folder (retrained
    weights get new cache entries), else ``""`` (a hub id names its weights itself)."""
    folder = Path(model).expanduser()
    if not folder.is_dir():
        return ""
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        stat = path.stat()
        h.update(f"{path.relative_to(folder)}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    return h.hexdigest()[:16]


def family_of(model: str) -> ModelFamily:
    """The family of a hub id or local folder, from its config's ``model_type``."""
    transformers = require("transformers", "hf")
    try:
        with hub_loading(from_hub=not Path(model).expanduser().is_dir()):
            model_type = transformers.AutoConfig.from_pretrained(model).model_type
    except (OSError, ValueError) as e:
        raise BackendError(f"cannot read the config of model {model!r}: {e}") from e
    return {"blip-2": BLIP2, "llava": LLAVA}.get(model_type, GENERIC)


def load_vision_language_model(family: ModelFamily, model: str, *, device, dtype):
    """(processor, model in eval mode on ``device``); the tokenizer pads on the left for a
    decoder-only language model, on the right for an encoder-decoder one."""
    transformers = require("transformers", "hf")
    try:
        with hub_loading(from_hub=not Path(model).expanduser().is_dir()):
            processor = transformers.AutoProcessor.from_pretrained(model)
            model_class = getattr(transformers, family.model_class)
            loaded = model_class.from_pretrained(model, dtype=dtype).to(device).eval()
    except (OSError, ValueError, KeyError) as e:
        raise BackendError(f"cannot load {family.backend} model {model!r}: {e}") from e
    tokenizer = getattr(processor, "tokenizer", None)
    if tokenizer is not None:
        # Decoder-only models continue the last prompt token: pad on the left. An encoder
        # (T5) with relative positions must see the image queries next to the text: pad right.
        text_config = getattr(loaded.config, "text_config", loaded.config)
        tokenizer.padding_side = "right" if getattr(text_config, "is_encoder_decoder", False) else "left"
    return processor, loaded


def format_prompt(processor, family: ModelFamily, prompt: str, *, question: bool = False) -> str:
    """``prompt`` with the image placeholder: the processor's chat template when it has one,
    else the family's question or fallback format."""
    if not prompt:
        return ""
    if getattr(processor, "chat_template", None):
        conversation = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]
        return processor.apply_chat_template(conversation, add_generation_prompt=True)
    template = family.question_template if question and family.question_template else family.fallback_template
    return template.format(prompt=prompt)


class HFCaptioner:
    """Batched captioning with a ``transformers`` vision-language model.

    Parameters
    ----------
    family : ModelFamily
        Which model class and prompt conventions to use.
    model : str
        Hub id or local folder.
    prompt : str, optional
        Instruction or caption prefix; default the family's (see module docstring).
    max_new_tokens : int
        Longest caption, in tokens.
    num_beams : int
        Beam search width (1 = greedy).
    temperature : float
        Sampling temperature; 0 (default) does not sample. Sampled captions vary between
        runs; the caption cache keeps the first ones.
    prompts : str, optional
        Prompt set the default prompt comes from (default ``strict``).
    device : str, optional
        ``cuda``, ``mps`` or ``cpu``; default the best available.
    precision : {"auto", "fp32", "fp16", "bf16"}

    Processor and weights load on the first caption, not when built.
    """

    def __init__(
        self,
        family: ModelFamily,
        model: str,
        *,
        prompt: str | None = None,
        max_new_tokens: int = 60,
        num_beams: int = 1,
        temperature: float = 0.0,
        prompts: str | None = None,
        device: str | None = None,
        precision: str = "auto",
    ) -> None:
        if not model:
            raise BackendError(f"the {family.backend} captioner needs a model id, e.g. '{family.backend}:Salesforce/blip-image-captioning-base'")
        if max_new_tokens < 1 or num_beams < 1 or temperature < 0:
            raise ValueError(f"max_new_tokens and num_beams must be >= 1 and temperature >= 0, "
                             f"got {max_new_tokens}, {num_beams}, {temperature}")
        self.device = auto_device(device)
        self.dtype = auto_dtype(self.device, precision)
        self.max_new_tokens = max_new_tokens
        self.num_beams = num_beams
        self.temperature = temperature
        self.family = family
        self.model_name = model
        if prompt is None:
            prompt = load_prompt(family.default_prompt, prompts).text.strip() if family.default_prompt else ""
        self.prompt = prompt
        self.spec = f"{family.backend}:{model}"
        # Named without the weights (they load on the first caption): a run served from the
        # cache, or a dry run, loads no model. The model id names its chat template.
        self.cache_id = json.dumps(
            {
                "backend": family.backend, "model": model, "weights": weights_fingerprint(model),
                "prompt": prompt, "max_new_tokens": max_new_tokens, "num_beams": num_beams,
                "dtype": str(self.dtype).removeprefix("torch."),
                # Only when sampling, so greedy and beam caches keep their ids.
                **({"temperature": temperature} if temperature else {}),
            },
            sort_keys=True,
        )

    @cached_property
    def _loaded(self):
        return load_vision_language_model(self.family, self.model_name, device=self.device, dtype=self.dtype)

    @property
    def processor(self):
        return self._loaded[0]

    @property
    def model(self):
        return self._loaded[1]

    @cached_property
    def prompt_text(self) -> str:
        """The prompt as the model reads it (the processor's chat template applied)."""
        return format_prompt(self.processor, self.family, self.prompt)

    def caption_images(self, images: Sequence[Image.Image]) -> list[str]:
        """One caption per image, from one ``generate`` call."""
        if not images:
            return []
        images = list(images)
        if self.prompt_text:
            inputs = self.processor(images=images, text=[self.prompt_text] * len(images), return_tensors="pt", padding=True)
        else:
            inputs = self.processor(images=images, return_tensors="pt")
        inputs = inputs.to(self.device)
        inputs["pixel_values"] = inputs["pixel_values"].to(self.dtype)
        with torch.inference_mode():
            sampling = {"do_sample": True, "temperature": self.temperature} if self.temperature else {"do_sample": False}
            output = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens,
                                         num_beams=self.num_beams, **sampling)
        texts = self.processor.batch_decode(continuation(output, inputs), skip_special_tokens=True)
        return [" ".join(text.split()) for text in texts]


def continuation(output: torch.Tensor, inputs) -> torch.Tensor:
    """What ``generate`` added: decoder-only models return prompt + continuation (a prompt of
    one row stands for every returned sequence)."""
    prompt_ids = inputs.get("input_ids")
    if prompt_ids is not None and output.shape[1] >= prompt_ids.shape[1] \
            and torch.equal(output[:, : prompt_ids.shape[1]], prompt_ids.expand(len(output), -1)):
        return output[:, prompt_ids.shape[1]:]
    return output


def _factory(family: ModelFamily):
    def create(model: str, *, base_url: str | None = None, **options) -> HFCaptioner:
        del base_url  # calls no endpoint
        return HFCaptioner(family, model or family.default_model, **options)

    create.__doc__ = f"Build a {family.backend} captioner; options as :class:`HFCaptioner`."
    return create


# The factories visdiff.captioners declares, one per family.
_create_blip2 = _factory(BLIP2)
_create_llava = _factory(LLAVA)
_create_hf = _factory(GENERIC)
