"""A local HTTP server on 127.0.0.1 that speaks the OpenAI chat-completions protocol.

It replays scripted :class:`Reply` objects in order (then a default), and records every
request body and header, so tests drive the real ``openai`` client over real HTTP:

    with FakeOpenAIServer([Reply("* red cars"), Reply(status=500)]) as server:
        client = ChatClient("fake-model", base_url=server.base_url)

Use the :func:`fake_openai` fixture (``pytest_plugins = ["tests.fake_openai"]`` in a test module)
for a server per test.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


@dataclass
class Reply:
    """One scripted answer: chat content with HTTP 200, or an error status with headers.

    ``delay`` seconds pass before answering (longer than the client timeout = a timeout).
    ``raw_body`` replaces the JSON body (with ``content_type``), for servers that misbehave.
    ``top_logprobs``: (token, logprob) candidates of the first answer token, sent as the
    choice's ``logprobs`` (None: the choice has no logprobs, as from endpoints without them).
    ``prompt_tokens``, ``completion_tokens``: the ``usage`` sent with an answer.
    """

    content: str | None = ""
    status: int = 200
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    # Faulty servers: a raw body sent as is with this content type (an HTML page, cut-off JSON).
    raw_body: str | None = None
    content_type: str = "application/json"
    top_logprobs: list[tuple[str, float]] | None = None
    prompt_tokens: int = 1
    completion_tokens: int = 1


@dataclass
class Request:
    body: dict
    headers: dict[str, str]
    received_at: float = 0.0  # time.monotonic() when it arrived

    @property
    def last_user_text(self) -> str:
        """Text of the last user message (text parts joined for multi-part content)."""
        content = [m for m in self.body["messages"] if m["role"] == "user"][-1]["content"]
        if isinstance(content, str):
            return content
        return "\n".join(part["text"] for part in content if part["type"] == "text")


class FakeOpenAIServer:
    """Scripted OpenAI-compatible server; ``respond(request)`` answers once the script is used up.

    ``latency`` seconds pass before every reply (as a remote model's would); ``max_in_flight``
    is the most requests it was handling at one time.
    """

    def __init__(self, replies: list[Reply] | None = None, *, respond: Callable[[Request], Reply] | None = None,
                 latency: float = 0.0) -> None:
        self.replies = list(replies or [])
        self.respond = respond or (lambda request: Reply(status=500, content="no scripted reply left"))
        self.latency = latency
        self.requests: list[Request] = []
        self.max_in_flight = 0
        self._in_flight = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def __enter__(self) -> FakeOpenAIServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _next_reply(self, request: Request) -> Reply:
        with self._lock:
            self.requests.append(request)
            if self.replies:
                return self.replies.pop(0)
        return self.respond(request)

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                request = Request(body=body, headers={k.lower(): v for k, v in self.headers.items()},
                                  received_at=time.monotonic())
                if not self.path.endswith("/chat/completions"):
                    self._send(Reply(status=404, content=f"no route {self.path}"), body)
                    return
                with server._lock:
                    server._in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server._in_flight)
                try:
                    reply = server._next_reply(request)
                    if reply.delay or server.latency:
                        time.sleep(reply.delay + server.latency)
                finally:
                    # Before the answer goes out: once the client has it, it may send the next request.
                    with server._lock:
                        server._in_flight -= 1
                self._send(reply, body)

            def _send(self, reply: Reply, body: dict) -> None:
                if reply.raw_body is not None:
                    data = reply.raw_body.encode()
                elif reply.status == 200:
                    data = json.dumps(completion(reply.content, model=body.get("model", ""), top_logprobs=reply.top_logprobs,
                                                 usage=(reply.prompt_tokens, reply.completion_tokens))).encode()
                else:
                    error = {"message": reply.content or f"HTTP {reply.status}", "type": "server_error"}
                    data = json.dumps({"error": error}).encode()
                try:
                    self.send_response(reply.status)
                    self.send_header("content-type", reply.content_type)
                    self.send_header("content-length", str(len(data)))
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)

        return Handler


def completion(content: str | None, *, model: str, top_logprobs: list[tuple[str, float]] | None = None,
               usage: tuple[int, int] = (1, 1)) -> dict:
    """A chat.completion response body (with the first token's logprobs when given) and its
    ``usage`` (prompt, completion tokens)."""
    logprobs = None if top_logprobs is None else {"content": [{
        "token": top_logprobs[0][0], "logprob": top_logprobs[0][1], "bytes": None,
        "top_logprobs": [{"token": t, "logprob": lp, "bytes": None} for t, lp in top_logprobs]}]}
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop",
             "logprobs": logprobs}
        ],
        "usage": {"prompt_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": sum(usage)},
    }


# Retry waits the SDK honours: keep scripted failures fast.
FAST_RETRY = {"retry-after-ms": "5"}


@pytest.fixture
def fake_openai():
    """A started :class:`FakeOpenAIServer` with an empty script; append to ``.replies``."""
    with FakeOpenAIServer() as server:
        yield server
