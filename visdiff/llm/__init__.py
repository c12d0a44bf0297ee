"""Chat models behind any OpenAI-compatible API (OpenAI, vLLM, Ollama, llama.cpp server)."""

from visdiff.llm.client import API_KEY_ENV, BASE_URL_ENV, ChatClient, ChatStats, image_content

__all__ = ["API_KEY_ENV", "BASE_URL_ENV", "ChatClient", "ChatStats", "image_content"]
