"""ChatClient over real HTTP against the scripted OpenAI-compatible server."""

from __future__ import annotations

import json
import time

import pytest
from PIL import Image

from tests.fake_openai import FAST_RETRY, Reply
from visdiff.cache_root import CacheRoot
from visdiff.errors import BackendError, ServiceError
from visdiff.llm import ChatClient, image_content

# Fixture: fake_openai (a scripted OpenAI-compatible server per test).
pytest_plugins = ["tests.fake_openai"]

MESSAGES = [{"role": "user", "content": "list differences"}]
SECRET = "sk-test-secret-1234567890"


def make_client(server, tmp_path, **options) -> ChatClient:
    options = {"timeout": 5.0, "max_retries": 2, "cache": CacheRoot(tmp_path / "cache"), **options}
    return ChatClient("fake-model", base_url=server.base_url, api_key=SECRET, **options)


def test_answer_is_returned_and_request_is_well_formed(fake_openai, tmp_path):
    fake_openai.replies.append(Reply("* red cars\n* snow"))
    client = make_client(fake_openai, tmp_path)
    assert client.chat(MESSAGES, temperature=0.5, seed=3) == "* red cars\n* snow"
    request = fake_openai.requests[0]
    assert request.body["model"] == "fake-model"
    assert request.body["messages"] == MESSAGES
    assert request.body["temperature"] == 0.5 and request.body["seed"] == 3
    assert request.headers["authorization"] == f"Bearer {SECRET}"


def test_cache_serves_repeat_and_keys_on_params_never_the_key(fake_openai, tmp_path):
    fake_openai.replies += [Reply("first"), Reply("second")]
    client = make_client(fake_openai, tmp_path)
    assert client.chat(MESSAGES, seed=1) == "first"
    assert client.chat(MESSAGES, seed=1) == "first"
    assert len(fake_openai.requests) == 1
    assert client.stats.requests == 1 and client.stats.cached == 1
    # Other parameters are another question.
    assert client.chat(MESSAGES, seed=2) == "second"
    # A new client (new process) with another key reads the same cache entry.
    other = ChatClient("fake-model", base_url=fake_openai.base_url, api_key="sk-other",
                       cache=CacheRoot(tmp_path / "cache"))
    assert other.chat(MESSAGES, seed=1) == "first"
    stored = "".join(p.read_text() for p in (tmp_path / "cache").rglob("*") if p.is_file())
    assert "first" in stored and SECRET not in stored and "sk-other" not in stored


def test_no_cache_asks_every_time(fake_openai, tmp_path):
    fake_openai.replies += [Reply("one"), Reply("two")]
    client = make_client(fake_openai, tmp_path, cache=None)
    assert [client.chat(MESSAGES), client.chat(MESSAGES)] == ["one", "two"]
    assert not (tmp_path / "cache").exists()


def test_empty_answer_is_not_cached(fake_openai, tmp_path):
    fake_openai.replies += [Reply(""), Reply(None), Reply("now")]
    client = make_client(fake_openai, tmp_path)
    assert client.chat(MESSAGES) == ""
    assert client.chat(MESSAGES) == ""  # null content reads as empty
    assert client.chat(MESSAGES) == "now"
    assert len(fake_openai.requests) == 3


def test_429_is_retried_honouring_retry_after(fake_openai, tmp_path):
    fake_openai.replies += [Reply(status=429, content="slow down", headers={"retry-after": "1"}), Reply("ok")]
    client = make_client(fake_openai, tmp_path)
    start = time.perf_counter()
    assert client.chat(MESSAGES) == "ok"
    waited = time.perf_counter() - start
    assert len(fake_openai.requests) == 2
    assert 0.9 <= waited < 4.0  # the server's 1 s, not the SDK's 0.5 s default backoff


def test_5xx_then_success(fake_openai, tmp_path):
    fake_openai.replies += [Reply(status=500, headers=FAST_RETRY), Reply(status=503, headers=FAST_RETRY), Reply("ok")]
    assert make_client(fake_openai, tmp_path).chat(MESSAGES) == "ok"
    assert len(fake_openai.requests) == 3


def test_persistent_5xx_is_a_service_error(fake_openai, tmp_path):
    fake_openai.respond = lambda request: Reply(status=502, content="bad gateway", headers=FAST_RETRY)
    with pytest.raises(ServiceError, match=r"HTTP 502 after 2 retries: bad gateway"):
        make_client(fake_openai, tmp_path).chat(MESSAGES)
    assert len(fake_openai.requests) == 3  # first try + 2 retries


def test_timeout_is_retried_then_reported(fake_openai, tmp_path):
    fake_openai.replies += [Reply("late", delay=1.5), Reply("on time")]
    client = make_client(fake_openai, tmp_path, timeout=0.5, max_retries=1)
    assert client.chat(MESSAGES) == "on time"
    fake_openai.respond = lambda request: Reply("late", delay=1.5)
    with pytest.raises(ServiceError, match=r"no answer within 0.5 s"):
        client.chat([{"role": "user", "content": "another question"}])


def test_auth_error_does_not_echo_the_key(fake_openai, tmp_path):
    fake_openai.replies.append(Reply(status=401, content=f"Incorrect API key provided: {SECRET}"))
    with pytest.raises(ServiceError) as info:
        make_client(fake_openai, tmp_path).chat(MESSAGES)
    assert "HTTP 401" in str(info.value) and "OPENAI_API_KEY" in str(info.value)
    assert SECRET not in str(info.value)
    assert len(fake_openai.requests) == 1  # not retried


def test_bad_request_message_is_redacted(fake_openai, tmp_path):
    fake_openai.replies.append(Reply(status=400, content=f"unknown parameter; key was {SECRET}"))
    with pytest.raises(ServiceError, match="HTTP 400: unknown parameter") as info:
        make_client(fake_openai, tmp_path).chat(MESSAGES)
    assert SECRET not in str(info.value)


def test_unreachable_server_is_a_service_error(tmp_path):
    client = ChatClient("m", base_url="http://127.0.0.1:9/v1", max_retries=0, cache=CacheRoot(tmp_path))
    with pytest.raises(ServiceError, match="cannot connect"):
        client.chat(MESSAGES)


def test_key_and_base_url_from_environment(fake_openai, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("OPENAI_BASE_URL", fake_openai.base_url)
    fake_openai.replies.append(Reply("env"))
    client = ChatClient("fake-model", cache=CacheRoot(tmp_path))
    assert client.chat(MESSAGES) == "env"
    assert fake_openai.requests[0].headers["authorization"] == f"Bearer {SECRET}"
    assert SECRET not in json.dumps(client.describe())


def test_openai_without_key_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(BackendError, match="set OPENAI_API_KEY"):
        ChatClient("gpt-4o")


def test_local_server_needs_no_key(fake_openai, tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    fake_openai.replies.append(Reply("hi"))
    assert ChatClient("m", base_url=fake_openai.base_url, cache=CacheRoot(tmp_path)).chat(MESSAGES) == "hi"


def test_image_content_is_a_jpeg_data_url():
    part = image_content(Image.new("RGB", (3000, 1500), (255, 0, 0)), max_side=64)
    import base64
    import io

    url = part["image_url"]["url"]
    assert part["type"] == "image_url" and url.startswith("data:image/jpeg;base64,")
    decoded = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert decoded.size == (64, 32)
