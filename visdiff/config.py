"""Where visdiff keeps its caches."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "VISDIFF_CACHE_DIR"


def default_cache_dir() -> Path:
    """``$VISDIFF_CACHE_DIR``, else the platform's user cache dir (``~/.cache/visdiff`` on Linux)."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("visdiff"))
