"""Chat models behind any OpenAI-compatible API (OpenAI, vLLM, Ollama, llama.cpp server)."""

from visdiff.llm.client import API_KEY_ENV, BASE_URL_ENV, ChatClient, ChatStats, image_content
from visdiff.llm.pool import DEFAULT_LLM_CONCURRENCY, RequestPool

__all__ = ["API_KEY_ENV", "BASE_URL_ENV", "DEFAULT_LLM_CONCURRENCY", "ChatClient", "ChatStats", "RequestPool",
           "image_content"]
