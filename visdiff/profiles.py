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
and at most 30 new tokens, LLaVA-1.5-13B sampling at temperature 0.2 up to 512 new tokens,
no merging of near-duplicate proposals, and a GPT-4 judge for benchmarks sent the provider's
defaults. The others keep visdiff's own: ``strict`` prompts, temperature 0.7, at most 512
tokens, a seed per round, greedy captions, merging, the offline judge (temperature 0, 5 tokens
when an LLM judge is chosen). docs/paper-fidelity.md lists every setting against the paper's.

Any stage or setting can be overridden per run (``captioner=``, ``temperature=``...).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from visdiff.errors import InputError


# visdiff's own judge requests: one digit, no sampling (the reference sends none: the provider's defaults).
DEFAULT_JUDGE_PARAMS: Mapping[str, float] = MappingProxyType({"temperature": 0, "max_tokens": 5})


@dataclass(frozen=True)
class Profile:
    """Backend specs for the three stages, their settings, and what running them requires.

    ``temperature`` and ``max_tokens`` of LLM requests: None sends none (the provider's
    default). ``caption_decoding`` maps a captioner backend to its decoding keywords
    (``num_beams``, ``max_new_tokens``, ``temperature``); a backend not listed decodes with
    its own defaults. ``backend_models``: the model of a backend named without one
    (``--captioner llava``). ``merge``: near-duplicate proposals merged by default.
    ``precision`` and ``full_decode``: the scorer's numerics (the reference: fp32, full decoding).
    ``judge``: the benchmark's judge (``offline`` or ``llm:MODEL``) and ``judge_params`` the
    settings its requests send (none: the provider's defaults).
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
    backend_models: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    merge: bool = True
    # The scorer's arithmetic ("auto": fp16 on accelerators) and whether JPEGs are decoded at
    # full scale (else at a reduced scale that still covers the model's input, for speed).
    precision: str = "auto"
    full_decode: bool = False
    # The vqa and caption-llm rankers ask as the reference code did ("reference") or visdiff's way.
    ranker_mode: str = "visdiff"
    judge: str = "offline"
    judge_params: Mapping[str, float] = field(default_factory=lambda: DEFAULT_JUDGE_PARAMS)


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
        "llava": MappingProxyType({"temperature": 0.2, "max_new_tokens": 512}),
    }),
    backend_models=MappingProxyType({"llava": "llava-hf/llava-1.5-13b-hf"}),
    # The reference keeps every line of the answer as a hypothesis: nothing merged.
    merge=False,
    precision="fp32",
    full_decode=True,
    ranker_mode="reference",
    judge="llm:gpt-4",
    judge_params=MappingProxyType({}),
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
