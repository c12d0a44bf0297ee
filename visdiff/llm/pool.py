"""The LLM traffic of one run: a bound on requests in flight shared by all its chat clients, one
pause that a rate limit sets for all of them, and the run's token usage.

Independent requests (judge questions, captions, proposal rounds) go through
:meth:`RequestPool.map`: threads (the ``openai`` SDK is synchronous and thread-safe), results
in input order, so callers see exactly what sequential calls would give. Each HTTP attempt
holds one of ``concurrency`` slots. A 429 answer sets the shared pause from its
``retry-after-ms``/``Retry-After`` header (:data:`DEFAULT_RATE_LIMIT_PAUSE` when it names
none): every attempt of every client waits for it before it is sent, the SDK's own retry of the
limited request included, so workers back off together instead of each hammering the server.
The SDK keeps its retries and backoff (``max_retries``); the pool only adds the shared wait.

Token usage counts into the pool's own :class:`TokenUsage` unless the calling context selected
another (:meth:`RequestPool.counting_into`, a :class:`contextvars.ContextVar`): a benchmark
counts each pair into its own, so a pair judged in a background thread while the next pair is
compared still counts its requests under its own record. :meth:`RequestPool.map` runs each call
in a copy of the caller's context, so the calls it makes count where their caller's would.
"""

from __future__ import annotations

import contextvars
import email.utils
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import CancelledError, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

from visdiff.llm.usage import TokenUsage

log = logging.getLogger(__name__)

DEFAULT_LLM_CONCURRENCY = 8
# A 429 that names no delay: the SDK backs off from 0.5 s; the others wait about as long.
DEFAULT_RATE_LIMIT_PAUSE = 1.0
# As the SDK: a longer Retry-After is not waited for (the request fails after its retries).
MAX_RATE_LIMIT_PAUSE = 60.0

T = TypeVar("T")
R = TypeVar("R")


def retry_after_seconds(headers) -> float:
    """The delay a 429 response asks for: ``retry-after-ms``, else ``Retry-After`` in seconds
    or as an HTTP date; :data:`DEFAULT_RATE_LIMIT_PAUSE` when it names none, at most
    :data:`MAX_RATE_LIMIT_PAUSE`.

    >>> retry_after_seconds({"retry-after-ms": "250"}), retry_after_seconds({"retry-after": "2"}), retry_after_seconds({})
    (0.25, 2.0, 1.0)
    """
    delay = None
    for name, divisor in (("retry-after-ms", 1000), ("retry-after", 1)):
        try:
            delay = float(headers.get(name)) / divisor
            break
        except (TypeError, ValueError):
            continue
    if delay is None and headers.get("retry-after"):
        when = email.utils.parsedate_tz(headers["retry-after"])
        delay = email.utils.mktime_tz(when) - time.time() if when else None
    if delay is None or delay < 0:
        return DEFAULT_RATE_LIMIT_PAUSE
    return min(delay, MAX_RATE_LIMIT_PAUSE)


@dataclass(frozen=True)
class _Unit:
    """What a context selected with :meth:`RequestPool.counting_into`."""

    usage: TokenUsage
    cancel: threading.Event | None = None


class RequestPool:
    """At most ``concurrency`` LLM requests in flight across the clients that share it, and
    the pause a 429 sets for all of them (see module doc); ``usage`` counts their tokens: the
    pool's own count, or the one the calling context selected (:meth:`counting_into`).

    Parameters
    ----------
    concurrency : int
        Requests in flight at a time (``--llm-concurrency``); 1 runs everything in order, in
        the calling thread.
    """

    def __init__(self, concurrency: int = DEFAULT_LLM_CONCURRENCY) -> None:
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise ValueError(f"concurrency must be a whole number >= 1, got {concurrency!r}")
        self.concurrency = concurrency
        self._usage = TokenUsage()
        # Per pool: another pool's requests in the same context keep counting where they did.
        self._unit: contextvars.ContextVar[_Unit | None] = contextvars.ContextVar(f"llm_unit_{id(self)}", default=None)
        self._slots = threading.BoundedSemaphore(concurrency)
        self._lock = threading.Lock()
        self._resume_at = 0.0  # time.monotonic() before which no attempt is sent

    @property
    def usage(self) -> TokenUsage:
        """Where the requests of the current context count: the :class:`TokenUsage` selected
        by :meth:`counting_into`, else the pool's own."""
        unit = self._unit.get()
        return self._usage if unit is None else unit.usage

    @contextmanager
    def counting_into(self, usage: TokenUsage, *, cancel: threading.Event | None = None) -> Iterator[TokenUsage]:
        """Within the block, requests of this thread (and of the :meth:`map` calls it starts,
        in whatever thread) count into ``usage``; once ``cancel`` is set, :meth:`map` starts
        none of its calls not yet started (they fail with ``CancelledError``; those in flight
        finish): work abandoned (Ctrl-C) ends with the requests in flight."""
        token = self._unit.set(_Unit(usage, cancel))
        try:
            yield usage
        finally:
            self._unit.reset(token)

    def map(self, function: Callable[[T], R], items: Iterable[T]) -> list[R]:
        """``function`` of each item, up to ``concurrency`` at a time, in input order, each in
        a copy of the caller's context (its usage count, see :meth:`counting_into`). The
        first failure (in input order) is raised once the calls running finish; calls not yet
        started are cancelled, as a sequential loop would not have made them."""
        items = list(items)
        unit = self._unit.get()
        cancel = unit.cancel if unit is not None else None

        def call(item: T) -> R:
            if cancel is not None and cancel.is_set():
                raise CancelledError("the LLM requests of this unit were abandoned")
            return function(item)

        if self.concurrency == 1 or len(items) <= 1:
            return [call(item) for item in items]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(items)), thread_name_prefix="llm") as executor:
            # A context per call: one context cannot be entered by two threads at once.
            futures = [executor.submit(contextvars.copy_context().run, call, item) for item in items]
            try:
                return [future.result() for future in futures]
            except BaseException:
                for future in futures:
                    future.cancel()
                raise

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Held while one request (with the SDK's retries of it) is in flight."""
        with self._slots:
            yield

    def pause(self, seconds: float) -> None:
        """No attempt of any client sharing the pool is sent for ``seconds`` from now (a
        later resume time already set stands)."""
        with self._lock:
            self._resume_at = max(self._resume_at, time.monotonic() + seconds)
        log.info("LLM rate limited (HTTP 429): all requests wait %.2f s", seconds)

    def wait_until_resumed(self) -> None:
        """Sleep until the shared pause is over (at once when there is none)."""
        while True:
            with self._lock:
                delay = self._resume_at - time.monotonic()
            if delay <= 0:
                return
            time.sleep(delay)

    def http_client(self):
        """The SDK's default HTTP client with this pool's hooks: every attempt waits for the
        shared pause; a 429 answer sets it."""
        import openai

        def on_response(response) -> None:
            if response.status_code == 429:
                self.pause(retry_after_seconds(response.headers))

        return openai.DefaultHttpxClient(event_hooks={"request": [lambda request: self.wait_until_resumed()],
                                                      "response": [on_response]})
