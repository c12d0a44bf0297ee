"""The ASGI app of ``visdiff serve``: one static page and the JSON API it calls.

API (every answer JSON, errors ``{"error": "..."}`` with 400 for bad input):

- ``GET /api/run``: the sets, the run's ranked rows, its provenance, whether it can propose;
- ``GET /api/rank?hypothesis=...`` (repeatable): ranked rows, ``auroc`` with ``auroc_low`` and
  ``auroc_high``, ``p_greater``, ``q_value``... (q-values over the hypotheses of the request);
- ``GET /api/images?hypothesis=...&side=a&k=12[&lowest=1]``: the set's images sorted by score;
- ``GET /api/scores?hypothesis=...``: histogram of the scores of A and of B;
- ``POST /api/propose`` (JSON body): start the proposer; ``GET /api/propose``: its progress
  and, once done, the ranked rows of its phrases; refused (409) when no proposer is configured.

Safe by default: images are served only as JPEGs re-encoded from the loaded sets' items, found
by content key (``/thumbnails/a/<sha256>``), never by a path from the request; the page is
static and fills itself with ``textContent`` (no HTML from data); a Content-Security-Policy
allows only this server's own script, style and images; requests naming another host are
refused (DNS rebinding), and ``POST`` needs a JSON content type (no cross-site form posts).
Work that touches the comparison runs in worker threads, so the event loop keeps answering.
"""

from __future__ import annotations

from importlib import resources

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from visdiff.errors import InputError, display_text
from visdiff.serve.served import SIDES, Busy, NoProposer, ServedComparison

# Longer than any phrase worth ranking (CLIP reads 77 tokens); a 5,000-character one is refused at once.
MAX_HYPOTHESIS_CHARS = 500
MAX_HYPOTHESES = 100
MAX_IMAGES = 60
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
STATIC_FILES = {"app.js": "text/javascript; charset=utf-8", "style.css": "text/css; charset=utf-8"}
SECURITY_HEADERS = {
    "content-security-policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
                               "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}
# Answers change as the comparison does; an image's JPEG is named by its content, so never changes.
NOT_CACHED = "no-store"
IMAGE_CACHED = "private, max-age=86400, immutable"


def static_text(name: str) -> str:
    return resources.files("visdiff.serve").joinpath("static", name).read_text(encoding="utf-8")


def hypotheses_of(request: Request) -> tuple[str, ...]:
    """The request's ``hypothesis`` values, bounded in number and length (cleaned later)."""
    hypotheses = tuple(request.query_params.getlist("hypothesis"))
    if not hypotheses:
        raise InputError("give at least one hypothesis: ?hypothesis=...")
    if len(hypotheses) > MAX_HYPOTHESES:
        raise InputError(f"at most {MAX_HYPOTHESES} hypotheses per request, got {len(hypotheses)}")
    for hypothesis in hypotheses:
        if len(hypothesis) > MAX_HYPOTHESIS_CHARS:
            raise InputError(f"a hypothesis has at most {MAX_HYPOTHESIS_CHARS} characters, got one of "
                             f"{len(hypothesis)}")
    return hypotheses


def one_hypothesis(request: Request) -> str:
    hypotheses = hypotheses_of(request)
    if len(hypotheses) > 1:
        raise InputError(f"give one hypothesis, got {len(hypotheses)}")
    return hypotheses[0]


def side_of(value: str | None) -> str:
    if value not in SIDES:
        raise InputError(f"side must be 'a' or 'b', got {value!r}")
    return value


def count_of(value: str | None, default: int) -> int:
    if value is None:
        return default
    if not value.isdigit() or not 1 <= int(value) <= MAX_IMAGES:
        raise InputError(f"k must be a whole number from 1 to {MAX_IMAGES}, got {value!r}")
    return int(value)


def flag_of(value: str | None) -> bool:
    if value not in (None, "0", "1", "true", "false"):
        raise InputError(f"lowest must be 0, 1, true or false, got {value!r}")
    return value in ("1", "true")


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": display_text(message)}, status_code=status)


class SecurityHeaders:
    """ASGI middleware putting :data:`SECURITY_HEADERS` on every response."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.update(SECURITY_HEADERS)
                headers.setdefault("cache-control", NOT_CACHED)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_app(served: ServedComparison, *, allowed_hosts: tuple[str, ...] = LOOPBACK_HOSTS) -> Starlette:
    """The app serving ``served``; requests whose Host header is not in ``allowed_hosts``
    (``("*",)``: any) are refused."""
    page = static_text("index.html")

    async def index(request: Request) -> Response:
        return Response(page, media_type="text/html; charset=utf-8")

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in STATIC_FILES:
            raise HTTPException(404, f"no static file {name!r}")
        return Response(static_text(name), media_type=STATIC_FILES[name])

    async def run(request: Request) -> JSONResponse:
        return JSONResponse({
            "set_a": served.comparison.set_a.name, "set_b": served.comparison.set_b.name,
            "n_a": len(served.comparison.set_a), "n_b": len(served.comparison.set_b),
            "rows": served.rows, "provenance": served.provenance, "can_propose": served.can_propose,
            "limits": {"hypothesis_chars": MAX_HYPOTHESIS_CHARS, "hypotheses": MAX_HYPOTHESES, "images": MAX_IMAGES},
        })

    async def rank(request: Request) -> JSONResponse:
        hypotheses = hypotheses_of(request)
        # Asked again (a click, a reload): answered on the event loop, no thread, no lock.
        rows = served.cached_rank(hypotheses)
        if rows is None:
            rows = await run_in_threadpool(served.rank, hypotheses)
        return JSONResponse({"rows": rows})

    async def images(request: Request) -> JSONResponse:
        query = request.query_params
        hypothesis, side = one_hypothesis(request), side_of(query.get("side"))
        k, lowest = count_of(query.get("k"), 12), flag_of(query.get("lowest"))
        return JSONResponse(await run_in_threadpool(served.images, hypothesis, side, k, lowest=lowest))

    async def scores(request: Request) -> JSONResponse:
        return JSONResponse(await run_in_threadpool(served.histogram, one_hypothesis(request)))

    async def propose(request: Request) -> JSONResponse:
        if request.method == "GET":
            return JSONResponse(served.job.record())
        # A form on another site can POST here; only scripts of this page's origin send JSON.
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            return error(415, "POST /api/propose takes a JSON body (Content-Type: application/json)")
        if not served.start_proposal():
            return error(409, "a proposal is running: poll GET /api/propose")
        return JSONResponse(served.job.record(), status_code=202)

    def image(thumbnail: bool):
        async def endpoint(request: Request) -> Response:
            side, key = side_of(request.path_params["side"]), request.path_params["key"]
            jpeg = await run_in_threadpool(served.image_jpeg, side, key, thumbnail=thumbnail)
            if jpeg is None:
                raise HTTPException(404, f"set {side.upper()} has no image {key!r}")
            return Response(jpeg, media_type="image/jpeg", headers={"cache-control": IMAGE_CACHED})
        return endpoint

    async def bad_input(request: Request, exc: InputError) -> JSONResponse:
        return error(409 if isinstance(exc, NoProposer) else 400, str(exc))

    async def busy(request: Request, exc: Busy) -> JSONResponse:
        return error(503, str(exc))

    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return error(exc.status_code, exc.detail)

    routes = [
        Route("/", index),
        Route("/static/{name}", static),
        Route("/api/run", run),
        Route("/api/rank", rank),
        Route("/api/images", images),
        Route("/api/scores", scores),
        Route("/api/propose", propose, methods=["GET", "POST"]),
        Route("/thumbnails/{side}/{key}", image(thumbnail=True)),
        Route("/images/{side}/{key}", image(thumbnail=False)),
    ]
    return Starlette(
        routes=routes,
        middleware=[Middleware(SecurityHeaders), Middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts))],
        exception_handlers={InputError: bad_input, Busy: busy, HTTPException: http_error},
    )
