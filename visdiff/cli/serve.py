"""``visdiff serve``: explore a comparison in the browser, over one kept Comparison.

The sets and options are those of ``visdiff compare``; ``--results DIR`` reopens a finished
run (its rows, settings and provenance from ``DIR/results.json``, the embeddings from the
cache) instead of comparing again. The server is a local uvicorn: 127.0.0.1 unless ``--host``
says otherwise, which is then said to expose it.
"""

from __future__ import annotations

import gc
import ipaddress
import socket
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from visdiff.cli import app
from visdiff.cli.compare import COMPARE_OPTIONS, OFFLINE_NOTE
from visdiff.cli.options import SetInputs, run_command
from visdiff.cli.output import stderr
from visdiff.errors import BackendError, InputError, display_text
from visdiff.options import RunOptions
from visdiff.profiles import DEFAULT_PROFILE

LOOPBACK = "127.0.0.1"
DEFAULT_PORT = 8765


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` (port 0: any free one), before any image is read."""
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        # Said to be TCP: asyncio turns Nagle's algorithm off only on such sockets' connections
        # (else each answer waits ~40 ms for a delayed ACK between its header and body writes).
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)  # connections wait from now on: the printed address answers once the server runs
    except OSError as e:
        raise InputError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    return sock


@run_command(app, "serve", *COMPARE_OPTIONS, inputs=True)
def serve_command(
    inputs: SetInputs,
    options: RunOptions,
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on (0: any free one).",
                                      rich_help_panel="Server")] = DEFAULT_PORT,
    host: Annotated[str, typer.Option(help="Address to listen on; anything but a loopback address exposes the "
                                      "page, the images and the proposer to the network.",
                                      rich_help_panel="Server")] = LOOPBACK,
    results: Annotated[Path | None, typer.Option(
        "--results", help="Reopen the finished run in this folder (its results.json; embeddings from the cache) "
        "instead of comparing again; --llm/--proposer then enable proposing.", rich_help_panel="Server",
        exists=True, file_okay=False)] = None,
    quiet: bool = False,
    verbose: bool = False,
) -> None:
    """Explore how set A differs from set B in the browser: the ranked table, any typed hypothesis
    ranked at once, the images behind each row, score histograms, provenance; a JSON API beside."""
    try:
        import uvicorn

        from visdiff.serve import LOOPBACK_HOSTS, FinishedRun, create_app, serve_new_run
    except ImportError as e:
        raise BackendError(f"visdiff serve needs the {e.name!r} package: pip install 'visdiff[serve]'") from None
    if not host.strip():  # the socket layer reads an empty host as every interface
        raise InputError("--host '' names no address; give one (127.0.0.1 keeps the server on this machine)")
    sock = listening_socket(host, port)
    exposed = not is_loopback(host)
    finished = FinishedRun.read(results) if results is not None else None
    can_propose = True  # a new run's proposer is checked (its API key too) before any image is read
    if finished is not None:
        can_propose = bool(options.proposer or options.llm)
        options = finished.options(options)
    elif not quiet and options.profile == DEFAULT_PROFILE and not any((options.captioner, options.proposer,
                                                                       options.scorer, options.llm)):
        stderr.print(OFFLINE_NOTE, highlight=False, soft_wrap=True)
    sets, stages = inputs.load(options, proposing=finished is None or can_propose)
    served = (finished.serve(stages, *sets, can_propose=can_propose) if finished is not None
              else serve_new_run(stages, *sets))
    # Behind a loopback address only the names of this machine may be asked for (no DNS rebinding).
    allowed_hosts = ("*",) if exposed else LOOPBACK_HOSTS
    server = uvicorn.Server(uvicorn.Config(create_app(served, allowed_hosts=allowed_hosts),
                                           log_level="info" if verbose else "warning", access_log=verbose))
    bound_host, bound_port = sock.getsockname()[:2]
    url_host = f"[{bound_host}]" if ":" in bound_host else bound_host
    if exposed:
        stderr.print(f"[yellow]warning:[/yellow] listening on {escape(display_text(host))}: the page, the images of both "
                     "sets and the proposer are exposed to every machine that can reach this one",
                     highlight=False, soft_wrap=True)
    stderr.print(f"serving {display_text(inputs.title)} at http://{url_host}:{bound_port}/ (Ctrl-C to stop)",
                 highlight=False, soft_wrap=True, markup=False)
    try:
        server.run(sockets=[sock])
        interrupted = False
    except KeyboardInterrupt:  # uvicorn stops on Ctrl-C, then raises it again
        interrupted = True
    # The comparison's cache-writer thread ends only with it, and the executable joins every
    # thread before it exits: the comparison goes first (its objects refer to each other).
    del served, server, stages
    gc.collect()
    if interrupted:
        raise KeyboardInterrupt
