"""Model options shared by ``visdiff caption``, ``propose`` and ``compare``."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

import typer

from visdiff.llm import BASE_URL_ENV


class ProfileName(str, Enum):
    offline = "offline"
    laptop = "laptop"
    paper = "paper"


MODEL_PANEL = "Models"
LLM_PANEL = "LLM proposer"

ProfileOption = Annotated[
    ProfileName | None,
    typer.Option("--profile", "-p", help="Bundle of models: offline (default, no downloads), laptop (CPU + API LLM), paper.",
                 rich_help_panel=MODEL_PANEL, case_sensitive=False),
]
CaptionerOption = Annotated[
    str | None,
    typer.Option("--captioner", help="Captioner spec, e.g. 'blip2:Salesforce/blip2-flan-t5-xxl', 'llava:llava-hf/llava-1.5-7b-hf', "
                 "'hf:Salesforce/blip-image-captioning-base', 'openai:gpt-4o'.", rich_help_panel=MODEL_PANEL),
]
ProposerOption = Annotated[
    str | None,
    typer.Option("--proposer", help="Proposer spec: 'llm:MODEL' (captions -> LLM), 'vlm:MODEL' (image grid -> vision LLM), 'vocabulary'.",
                 rich_help_panel=MODEL_PANEL),
]
ScorerOption = Annotated[
    str | None,
    typer.Option("--scorer", "-s", help="Scorer spec, e.g. 'open_clip:ViT-bigG-14:laion2b_s39b_b160k'.", rich_help_panel=MODEL_PANEL),
]
ClipOption = Annotated[
    str | None,
    typer.Option("--clip", help="Shorthand for --scorer open_clip:ARCH:PRETRAINED.", rich_help_panel=MODEL_PANEL),
]
DeviceOption = Annotated[str | None, typer.Option(help="cuda, mps or cpu (default: best available).", rich_help_panel=MODEL_PANEL)]
LlmOption = Annotated[
    str | None,
    typer.Option("--llm", help="Chat model for the proposer (any OpenAI-compatible name); key from $OPENAI_API_KEY.",
                 rich_help_panel=LLM_PANEL),
]
BaseUrlOption = Annotated[
    str | None,
    typer.Option("--base-url", envvar=BASE_URL_ENV, show_envvar=True,
                 help="OpenAI-compatible endpoint, e.g. http://localhost:8000/v1 (vLLM, Ollama, llama.cpp).",
                 rich_help_panel=LLM_PANEL),
]
RoundsOption = Annotated[int, typer.Option(min=1, help="Proposal rounds (one LLM call each).", rich_help_panel=LLM_PANEL)]
SamplesOption = Annotated[int, typer.Option("--samples", min=1, help="Images sampled from each set per round.", rich_help_panel=LLM_PANEL)]
SeedOption = Annotated[int, typer.Option(help="Seed for the sampling of images and the LLM.", rich_help_panel=LLM_PANEL)]
BothDirectionsOption = Annotated[
    bool, typer.Option("--both-directions", help="Also propose and rank what is more true of B than of A.", rich_help_panel=LLM_PANEL),
]


def scorer_spec(scorer: str | None, clip: str | None) -> str | None:
    return f"open_clip:{clip}" if clip else scorer
