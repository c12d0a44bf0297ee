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

Any stage can be overridden per run (``captioner=``, ``proposer=``, ``scorer=``, ``llm=``).
"""

from __future__ import annotations

from dataclasses import dataclass

from visdiff.errors import InputError


@dataclass(frozen=True)
class Profile:
    """Backend specs for the three stages, and what running them requires."""

    name: str
    captioner: str
    proposer: str
    scorer: str
    needs: str


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
