"""``openai`` captioner: any OpenAI-compatible vision chat model (gpt-4o, a local vLLM...).

Spec ``openai:MODEL``. Each image goes as a base64 JPEG data URL with the caption prompt,
greedy decoding (temperature 0). Key from ``$OPENAI_API_KEY``, endpoint from ``base_url`` or
``$OPENAI_BASE_URL``. Captions are cached by the caption cache, so the chat client's own
answer cache is off here (it would store every caption twice).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from PIL import Image

from visdiff.errors import ServiceError
from visdiff.llm import ChatClient, RequestPool, image_content
from visdiff.llm.tokens import message_tokens, sent_image_tokens
from visdiff.prompts import load_prompt


class OpenAICaptioner:
    """One chat request per image, as many in flight as the client's pool allows."""

    def __init__(self, client: ChatClient, *, prompt: str, max_new_tokens: int = 120) -> None:
        self.client = client
        self.prompt = prompt
        self.max_new_tokens = max_new_tokens
        self.spec = f"openai:{client.model}"
        self.cache_id = json.dumps(
            {"backend": "openai", **client.describe(), "prompt": prompt, "max_new_tokens": max_new_tokens,
             "temperature": 0},
            sort_keys=True,
        )

    def planned_tokens(self, width: int, height: int) -> tuple[int, int]:
        """Estimated (prompt, completion) tokens of the request for an image of this size (a
        dry run's; the completion at its bound)."""
        return message_tokens([{"role": "user", "content": self.prompt}]) + sent_image_tokens(width, height), \
            self.max_new_tokens

    def caption_images(self, images: Sequence[Image.Image]) -> list[str]:
        conversations = [[{"role": "user", "content": [{"type": "text", "text": self.prompt}, image_content(image)]}]
                         for image in images]
        answers = self.client.chat_many(conversations, temperature=0, max_tokens=self.max_new_tokens)
        captions = [" ".join(answer.split()) for answer in answers]
        if not all(captions):
            raise ServiceError(f"{self.spec} at {self.client.endpoint} returned an empty caption")
        return captions


def _create_openai(
    model: str,
    *,
    base_url: str | None = None,
    device: str | None = None,
    prompt: str | None = None,
    prompts: str | None = None,
    max_new_tokens: int = 120,
    timeout: float = 60.0,
    max_retries: int = 3,
    llm_pool: RequestPool | None = None,
) -> OpenAICaptioner:
    del device  # runs no local model
    client = ChatClient(model or "gpt-4o", base_url=base_url, timeout=timeout, max_retries=max_retries, pool=llm_pool,
                        stage="captioning")
    prompt = prompt if prompt is not None else load_prompt("caption", prompts).text.strip()
    return OpenAICaptioner(client, prompt=prompt, max_new_tokens=max_new_tokens)
