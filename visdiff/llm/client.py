"""Chat with any OpenAI-compatible endpoint (OpenAI, vLLM, Ollama, llama.cpp server).

Requests go through the official ``openai`` SDK, which retries transient failures itself:
connection errors, timeouts, HTTP 408/409/429 and 5xx, with exponential backoff (0.5 s
doubling, at most 8 s) or the server's ``Retry-After``/``retry-after-ms`` delay when given.
What still fails after ``max_retries`` becomes a :class:`visdiff.errors.ServiceError`.

Requests go out through the client's :class:`~visdiff.llm.pool.RequestPool`, shared by a run's
clients: a bound on requests in flight, one pause on a 429 for all, and the run's token usage
(each request's ``usage`` under the client's ``stage``, in the count the calling context
selected, :meth:`RequestPool.counting_into`; cached answers counted apart).
:meth:`ChatClient.chat_many` asks independent conversations concurrently, answers in order.

Answers are cached under the hash of (model, base URL, messages, parameters). The API key is
never part of a cache key, a cache entry, a log line or an error message.
"""

from __future__ import annotations

import base64
import io
import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image

from visdiff.cache_root import CacheRoot
from visdiff.errors import BackendError, ServiceError
from visdiff.llm.pool import RequestPool
from visdiff.llm.tokens import IMAGE_MAX_SIDE
from visdiff.redaction import redact_text, redact_url, register_secrets
from visdiff.registry import require

log = logging.getLogger(__name__)

API_KEY_ENV = "OPENAI_API_KEY"
BASE_URL_ENV = "OPENAI_BASE_URL"
# Bump when the meaning of a cached answer changes.
LLM_CACHE_VERSION = 1
# Local servers (vLLM, llama.cpp, Ollama) accept any key, but the SDK insists on one.
_LOCAL_PLACEHOLDER_KEY = "not-needed"


@dataclass
class ChatStats:
    """Answers served by the endpoint vs from the cache, for one client."""

    requests: int = 0
    cached: int = 0


class ChatClient:
    """One chat model at one OpenAI-compatible endpoint, with an answer cache.

    Parameters
    ----------
    model : str
        Model name as the endpoint knows it (``gpt-4o``, ``Qwen/Qwen2-VL-7B-Instruct``...).
    base_url : str, optional
        Endpoint root such as ``http://localhost:8000/v1``; default ``$OPENAI_BASE_URL``, else OpenAI.
    api_key : str, optional
        Default ``$OPENAI_API_KEY``. Optional for a custom ``base_url``.
    timeout : float
        Seconds per request attempt.
    max_retries : int
        Retries of transient failures (see module docstring) before giving up.
    cache : CacheRoot, optional
        The run's cache root; answers go to its ``llm/`` store. None: answers are not cached.
    pool : RequestPool, optional
        The run's shared pool (default: one of this client's own, default concurrency).
    stage : str
        The stage its requests count under in the pool's usage (``proposing``, ``judging``...;
        see :data:`visdiff.llm.usage.STAGES`), unless a call names another.
    """

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = 60.0,
        max_retries: int = 3,
        cache: CacheRoot | None = None,
        pool: RequestPool | None = None,
        stage: str = "other",
    ) -> None:
        if not model:
            raise BackendError("no LLM model given (e.g. --llm gpt-4o)")
        openai = require("openai", "llm")
        self.model = model
        self.base_url = base_url or os.environ.get(BASE_URL_ENV) or None
        self.timeout = timeout
        self.max_retries = max_retries
        key = api_key or os.environ.get(API_KEY_ENV)
        if not key:
            if self.base_url is None:
                raise BackendError(
                    f"no API key for {model!r}: set {API_KEY_ENV}, or point --base-url/{BASE_URL_ENV} "
                    "at a local OpenAI-compatible server"
                )
            key = _LOCAL_PLACEHOLDER_KEY
        register_secrets(url=self.base_url, api_key=key)
        self.pool = pool or RequestPool()
        self.stage = stage
        self._client = openai.OpenAI(api_key=key, base_url=self.base_url, timeout=timeout, max_retries=max_retries,
                                     http_client=self.pool.http_client())
        self._cache = cache.texts("llm", version=LLM_CACHE_VERSION) if cache is not None else None
        self.stats = ChatStats()
        self._stats_lock = threading.Lock()  # calls of one client run in several threads

    @property
    def endpoint(self) -> str:
        return redact_url(self.base_url) or "api.openai.com"

    def describe(self) -> dict:
        """Model and endpoint, for result records (never the key)."""
        return {"model": self.model, "base_url": redact_url(self.base_url)}

    def chat(self, messages: list[dict], *, stage: str | None = None, **params) -> str:
        """Send one chat-completions request and return the answer text ("" if none).

        ``params`` are passed to the endpoint as is (``temperature``, ``seed``, ``max_tokens``...)
        and are part of the cache key; ``stage`` counts the request under another stage than the
        client's. Raises ``ServiceError`` when the request fails for good.
        """
        stage = stage or self.stage
        cache_key = self._cache_key(messages, params)
        if cache_key is not None:
            cached = self._cache.get(cache_key)
            if cached is not None:
                with self._stats_lock:
                    self.stats.cached += 1
                self.pool.usage.add_cached(stage, self.model)
                return cached
        response = self._create(messages, params, stage)
        text = self._answer_text(response)
        # An empty answer is not cached: asking again may help.
        if cache_key is not None and text.strip():
            self._cache.put(cache_key, text)
        return text

    def _cache_key(self, messages: list[dict], params: dict) -> str | None:
        if self._cache is None:
            return None
        return self._cache.key({"model": self.model, "base_url": self.base_url, "messages": messages, "params": params})

    def is_cached(self, messages: list[dict], **params) -> bool:
        """Whether :meth:`chat` would answer these from the cache (sending nothing)."""
        cache_key = self._cache_key(messages, params)
        return cache_key is not None and self._cache.get(cache_key) is not None

    def chat_many(self, conversations: Sequence[list[dict]], *, stage: str | None = None, **params) -> list[str]:
        """:meth:`chat` of each conversation, concurrently through the pool; the answers (and
        the first failure, if any) in input order, as one call after another would give them."""
        return self.pool.map(lambda messages: self.chat(messages, stage=stage, **params), conversations)

    def complete(self, messages: list[dict], **params):
        """Send one request, uncached; return the answer text (checked as by :meth:`chat`)
        and the SDK's whole response (for ``logprobs``). Raises ``ServiceError`` when the
        request fails for good."""
        response = self._create(messages, params, self.stage)
        return self._answer_text(response), response

    def _create(self, messages: list[dict], params: dict, stage: str):
        """The SDK's response to one request (its retries included), counted with its usage."""
        response = self._send(messages, params)
        with self._stats_lock:
            self.stats.requests += 1
        usage = getattr(response, "usage", None)
        # Servers that report no usage count as 0 tokens: the request is still counted.
        self.pool.usage.add_request(stage, self.model, prompt_tokens=getattr(usage, "prompt_tokens", None) or 0,
                                    completion_tokens=getattr(usage, "completion_tokens", None) or 0)
        return response

    def _send(self, messages: list[dict], params: dict):
        import openai

        where = f"LLM {self.model!r} at {self.endpoint}"
        try:
            with self.pool.slot():
                return self._client.chat.completions.create(model=self.model, messages=messages, **params)
        except openai.APITimeoutError as e:
            raise ServiceError(f"{where}: no answer within {self.timeout:g} s, {self.max_retries} retries") from e
        except openai.APIConnectionError as e:
            raise ServiceError(f"{where}: cannot connect ({redact_text(str(e.__cause__ or e))}), {self.max_retries} retries") from e
        except (openai.AuthenticationError, openai.PermissionDeniedError) as e:
            # The body may quote part of the key: never echo it.
            raise ServiceError(f"{where}: HTTP {e.status_code}, key refused; check {API_KEY_ENV}") from e
        except openai.RateLimitError as e:
            raise ServiceError(f"{where}: rate limited (HTTP 429) after {self.max_retries} retries: {self._detail(e)}") from e
        except openai.APIStatusError as e:
            retried = f" after {self.max_retries} retries" if e.status_code >= 500 else ""
            raise ServiceError(f"{where}: HTTP {e.status_code}{retried}: {self._detail(e)}") from e
        except openai.OpenAIError as e:
            raise ServiceError(f"{where}: {redact_text(str(e))}") from e
        except ValueError as e:  # a body that is not the JSON it claims to be (cut off, garbled)
            raise ServiceError(f"{where}: sent a malformed response ({redact_text(str(e))[:200]})") from e

    def _answer_text(self, response) -> str:
        """The answer of a chat completion ("" if it has none); anything that is not a chat
        completion (an HTML page from a proxy, a login form...) is a ``ServiceError``."""
        choices = getattr(response, "choices", None)
        if isinstance(response, (str, bytes)) or not isinstance(choices, list):
            raw = response if isinstance(response, (str, bytes)) else response.model_dump_json(exclude_none=True)
            sample = " ".join(str(raw)[:120].split())
            raise ServiceError(f"LLM {self.model!r} at {self.endpoint}: the answer is not a chat completion "
                               f"(is the base URL right?); it began {redact_text(sample)!r}")
        if not choices:
            return ""
        message = getattr(choices[0], "message", None)
        content = getattr(message, "content", None)
        return content if isinstance(content, str) else ""

    def _detail(self, error) -> str:
        # The server's own message when it sent one, else the SDK's "Error code: ..." text.
        body = getattr(error, "body", None)
        message = body.get("message") if isinstance(body, dict) else None
        return redact_text(str(message or getattr(error, "message", error)))[:300]


def image_content(image: Image.Image, *, max_side: int = IMAGE_MAX_SIDE, quality: int = 90) -> dict:
    """A chat message part carrying ``image`` as a base64 JPEG data URL (longest side <= max_side)."""
    image = image.convert("RGB")
    if max(image.size) > max_side:
        image = image.copy()
        image.thumbnail((max_side, max_side))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return {"type": "image_url", "image_url": {"url": f"data:image/jpeg;base64,{data}"}}
