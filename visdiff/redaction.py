"""Secrets never leave the process: credentials inside URLs are masked wherever a URL is
recorded (results, reports, cache keys' descriptions, error messages), and every secret a
client sends (an API key, a URL's user and password, and the Basic header made of them) is
masked in whatever a service echoes back."""

from __future__ import annotations

import base64
import re
from urllib.parse import unquote, urlsplit, urlunsplit

REDACTED = "<redacted>"
# scheme://user:password@host or scheme://token@host, anywhere in a text.
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/\s@]+@")
# Shorter strings are too likely to be ordinary words to be masked everywhere.
_MIN_SECRET_LENGTH = 4
# Every secret registered by a client of this process, longest first when masking.
_SECRETS: set[str] = set()


def redact_url(url: str | None) -> str | None:
    """``url`` with any user name and password replaced by ``<redacted>``."""
    if not url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact_text(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{REDACTED}@{host}"))


def redact_text(text: str) -> str:
    """``text`` with the credentials of every URL in it, and every registered secret in any
    form a client sent it, replaced by ``<redacted>``."""
    for secret in sorted(_SECRETS, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return _URL_CREDENTIALS.sub(lambda m: f"{m['scheme']}{REDACTED}@", text)


def register_secrets(*, url: str | None = None, api_key: str | None = None) -> None:
    """Mask from now on, in every text :func:`redact_text` sees, the API key and the password
    of ``url``: as written, percent-decoded, and as the base64 of ``user:password`` that an
    HTTP client sends in a Basic ``Authorization`` header (a server may echo it)."""
    forms = {api_key or ""}
    try:
        parts = urlsplit(url or "")
    except ValueError:
        parts = None
    if parts is not None and (parts.username or parts.password):
        written = parts.netloc.rpartition("@")[0]
        password = written.partition(":")[2]
        for raw in {written, unquote(written)}:
            forms |= {raw, base64.b64encode(raw.encode()).decode("ascii").rstrip("=")}
        forms |= {password, unquote(password)}
    _SECRETS.update(form for form in forms if len(form) >= _MIN_SECRET_LENGTH)
