"""One cache root per run: nothing is written outside it, nothing at all with no cache, and
written files get the mode the user's umask gives."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

import visdiff
from visdiff.report import write_outputs


@pytest.fixture
def throwaway_home(tmp_path, monkeypatch) -> Path:
    """A fresh HOME and no cache settings in the environment: the user cache dir would be
    inside this HOME."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for name in ("VISDIFF_CACHE_DIR", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    return home


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def test_nothing_is_written_outside_the_given_cache_dir(throwaway_home, image_dirs, tmp_path):
    a, b = image_dirs
    cache_dir = tmp_path / "given-cache"
    # A free-text hypothesis makes the offline scorer embed its concept names (MiniLM), which
    # it keeps as a file of its own: it must go under the run's cache root too.
    visdiff.rank(["a red thing"], a, b, scorer="offline", cache_dir=cache_dir)
    visdiff.compare(a, b, cache_dir=cache_dir, show_progress=False)
    assert files_under(throwaway_home) == []
    assert (cache_dir / "offline").is_dir() and (cache_dir / "embeddings").is_dir()


def test_no_cache_writes_nothing_anywhere(throwaway_home, image_dirs, tmp_path):
    a, b = image_dirs
    cache_dir = tmp_path / "unused-cache"
    visdiff.rank(["a red thing"], a, b, scorer="offline", cache_dir=cache_dir, use_cache=False)
    visdiff.compare(a, b, cache_dir=cache_dir, use_cache=False, show_progress=False)
    assert files_under(throwaway_home) == []
    assert not cache_dir.exists()


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_outputs_and_cache_files_follow_the_umask(image_dirs, tmp_path, umask, mode):
    a, b = image_dirs
    old = os.umask(umask)
    try:
        result = visdiff.compare(a, b, cache_dir=tmp_path / "cache", show_progress=False)
        written = write_outputs(result, tmp_path / "out")
    finally:
        os.umask(old)
    files = list(written.values()) + files_under(tmp_path / "cache")
    assert {oct(stat.S_IMODE(p.stat().st_mode)) for p in files} == {oct(mode)}
