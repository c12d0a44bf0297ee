"""Profiles: named bundles of captioner, proposer and scorer choices.

- ``offline`` (default): the built-in offline captioner, vocabulary proposer and offline
  scorer. Needs nothing beyond the core install: no network, no API key, a CPU.
- ``laptop``: BLIP base captioner (~0.25B parameters), an API LLM (gpt-4o-mini), open_clip
  ViT-B/32 LAION-2B (~0.15B). Needs ``visdiff[hf,open_clip,llm]``, internet for the first
  model download, ``OPENAI_API_KEY`` (or ``--base-url`` for a local server); a CPU is enough.
- ``paper``: the paper's BLIP-2 FlanT5-XXL (~12B parameters), a GPT-4-class LLM (gpt-4o) and
  open_clip ViT-bigG-14 LAION-2B (~2.5B). Needs ``visdiff[hf,open_clip,llm]``, a CUDA GPU
  (fp16 weights take ~2 bytes per parameter, so roughly 30 GB for both models; an estimate,
  not a measurement), internet for the downloads and ``OPENAI_API_KEY``.

Besides the stage specs a profile names the prompt set (:mod:`visdiff.prompts`), the LLM
request settings and the caption decoding per captioner backend. ``paper`` uses the
reference implementation's: the ``paper`` prompts (with a system message), the provider's
default temperature and token limit (none sent, nor a seed), BLIP-2 beam search with 5 beams
and at most 30 new tokens, LLaVA sampling at temperature 0.2. The others keep visdiff's own:
``strict`` prompts, temperature 0.7, at most 512 tokens, a seed per round, greedy captions.

Any stage or setting can be overridden per run (``captioner=``, ``temperature=``...).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from visdiff.errors import InputError


@dataclass(frozen=True)
class Profile:
    """Backend specs for the three stages, their settings, and what running them requires.

    ``temperature`` and ``max_tokens`` of LLM requests: None sends none (the provider's
    default). ``caption_decoding`` maps a captioner backend to its decoding keywords
    (``num_beams``, ``max_new_tokens``, ``temperature``); a backend not listed decodes with
    its own defaults.
    """

    name: str
    captioner: str
    proposer: str
    scorer: str
    needs: str
    prompts: str = "strict"
    temperature: float | None = 0.7
    max_tokens: int | None = 512
    llm_seed: bool = True
    caption_decoding: Mapping[str, Mapping[str, float]] = field(default_factory=lambda: MappingProxyType({}))


OFFLINE = Profile(
    name="offline",
    captioner="offline",
    proposer="vocabulary",
    scorer="offline",
    needs="nothing beyond the core install: no network, no API key, CPU only",
)
LAPTOP = Profile(
    name="laptop",
    captioner="hf:Salesforce/blip-image-captioning-base",
    proposer="llm:gpt-4o-mini",
    scorer="open_clip:ViT-B-32:laion2b_s34b_b79k",
    needs="pip install 'visdiff[hf,open_clip,llm]'; internet for the first model download; "
          "OPENAI_API_KEY or --base-url for a local OpenAI-compatible server; runs on a CPU",
)
PAPER = Profile(
    name="paper",
    captioner="blip2:Salesforce/blip2-flan-t5-xxl",
    proposer="llm:gpt-4o",
    scorer="open_clip:ViT-bigG-14:laion2b_s39b_b160k",
    needs="pip install 'visdiff[hf,open_clip,llm]'; a CUDA GPU (~15B parameters in fp16); "
          "internet for the downloads; OPENAI_API_KEY",
    prompts="paper",
    temperature=None,
    max_tokens=None,
    llm_seed=False,
    caption_decoding=MappingProxyType({
        "blip2": MappingProxyType({"num_beams": 5, "max_new_tokens": 30}),
        "llava": MappingProxyType({"temperature": 0.2}),
    }),
)

PROFILES: dict[str, Profile] = {p.name: p for p in (OFFLINE, LAPTOP, PAPER)}
DEFAULT_PROFILE = OFFLINE.name


def get_profile(name: str | Profile) -> Profile:
    """The profile of that name (a :class:`Profile` passes through)."""
    if isinstance(name, Profile):
        return name
    if name not in PROFILES:
        raise InputError(f"unknown profile {name!r}; choose one of: {', '.join(PROFILES)}")
    return PROFILES[name]
