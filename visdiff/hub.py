"""Weights named by a Hugging Face hub id: one quick look whether the hub answers before
loading them. Unreachable (no network, a firewall), huggingface_hub retried five times over
52 s, printing each retry, before its error; now the load runs in offline mode (weights in
the local cache still load) and a miss says at once what to do instead. Loads of files on
disk that must never reach the hub run in :func:`offline_mode`, for that load only."""

from __future__ import annotations

import functools
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

from visdiff.errors import BackendError

OFFLINE_ALTERNATIVES = ("load weights from disk instead (--clip open_clip:ARCH:/path/to/weights, a local model "
                        "folder for --captioner), or set HF_HUB_OFFLINE=1 with the model in the local cache (HF_HOME)")
PROBE_SECONDS = 3.0


@functools.cache
def unreachable_reason(endpoint: str) -> str | None:
    """Why nothing answers at ``endpoint``'s host and port ("Name or service not known"...),
    or None when something does. Asked once per endpoint and process."""
    parts = urlsplit(endpoint)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname or "", port), timeout=PROBE_SECONDS).close()
    except OSError as e:
        return "no answer" if isinstance(e, TimeoutError) else e.strerror or str(e)
    return None


@contextmanager
def offline_mode() -> Iterator[None]:
    """No request to the hub inside (files on disk, and the local cache, only); the process's
    setting is back afterwards. huggingface_hub and transformers read it at each request."""
    from huggingface_hub import constants

    was = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = was


@contextmanager
def hub_loading(*, from_hub: bool = True) -> Iterator[None]:
    """Around a load (``from_hub``: of a model named by a hub id, not files on disk): offline
    when the hub cannot be reached or HF_HUB_OFFLINE is set, and then a load that fails says
    so once, naming the offline alternatives (the caller names the model)."""
    if not from_hub:
        yield
        return
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        why, alternatives = "HF_HUB_OFFLINE is set", OFFLINE_ALTERNATIVES.partition(", or set")[0]
    else:
        unreachable = unreachable_reason(constants.ENDPOINT)
        if unreachable is None:
            yield
            return
        why, alternatives = f"the Hugging Face hub at {constants.ENDPOINT} cannot be reached ({unreachable})", \
            OFFLINE_ALTERNATIVES
    try:
        with offline_mode():
            yield
    except Exception as e:
        raise BackendError(f"{why} and the local cache does not hold the model; {alternatives}") from e
