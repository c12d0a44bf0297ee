"""Shared fixtures: generated images, a tiny random open_clip model, an isolated cache, the
offline scorer's concept names encoded once a session."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

TINY_CLIP_ARCH = "visdiff-tiny-vit"
TINY_CLIP_CONFIG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "head_width": 32, "patch_size": 8},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2},
}


@pytest.fixture(autouse=True)
def restored_log_levels():
    """CLI runs set logger levels (``-q``: errors only) and huggingface_hub's propagation
    (:func:`visdiff.cli.setup_logging`); each test starts from the same ones, whichever test
    ran before."""
    loggers = [logging.getLogger(name) for name in (None, "visdiff", "PIL", "huggingface_hub")]
    levels = [(logger.level, logger.propagate) for logger in loggers]
    yield
    for logger, (level, propagate) in zip(loggers, levels):
        logger.setLevel(level)
        logger.propagate = propagate


class _SharedNameEncodings:
    """The offline scorer's MiniLM model, whose ``encode`` of the concept names (about 9 s on
    a loaded 2-core machine) is computed once per test session: every test's own cache
    root (:func:`isolated_cache`) would compute it again. The scorer's code around it runs
    as ever: it reads the names' file from the cache root, else encodes and writes it."""

    _encoded: dict = {}

    def __init__(self, model) -> None:
        self._model = model

    def encode(self, names, **options):
        key = (self._model, tuple(names), tuple(sorted(options.items())))
        if key not in self._encoded:
            self._encoded[key] = self._model.encode(names, **options)
        return self._encoded[key].copy()

    def __getattr__(self, name):
        return getattr(self._model, name)


@pytest.fixture(scope="session", autouse=True)
def concept_names_encoded_once():
    try:
        from visdiff.scorers.offline import OfflineScorer
    except ImportError:  # the offline extra is not installed
        yield
        return
    original = OfflineScorer._names_embedded

    def names_embedded(self, model, names):
        return original(self, _SharedNameEncodings(model), names)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(OfflineScorer, "_names_embedded", names_embedded)
        yield


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch) -> Path:
    """Every test gets its own cache dir; nothing touches the user's cache."""
    cache_dir = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("VISDIFF_CACHE_DIR", str(cache_dir))
    return cache_dir


def make_image(path: Path, color, *, size=(48, 40), noise_seed: int | None = None) -> Path:
    """An RGB image of ``color`` with optional deterministic noise, saved by extension."""
    arr = np.zeros((size[1], size[0], 3), np.uint8) + np.array(color, np.uint8)
    if noise_seed is not None:
        rng = np.random.default_rng(noise_seed)
        arr = np.clip(arr.astype(int) + rng.integers(-40, 40, arr.shape), 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)
    return path


@pytest.fixture
def image_dirs(tmp_path) -> tuple[Path, Path]:
    """Two folders: reddish noisy images (A) and bluish ones (B), 6 each."""
    a, b = tmp_path / "a", tmp_path / "b"
    for i in range(6):
        make_image(a / f"img{i}.png", (200, 40, 40), noise_seed=i)
        make_image(b / f"img{i}.jpg", (40, 40, 200), noise_seed=100 + i)
    return a, b


@pytest.fixture(scope="session")
def tiny_clip_weights(tmp_path_factory) -> str:
    """A ViT open_clip model with random weights saved to a file; returns its scorer spec."""
    import open_clip
    import torch

    folder = tmp_path_factory.mktemp("tiny_clip")
    config_path = folder / f"{TINY_CLIP_ARCH}.json"
    config_path.write_text(json.dumps(TINY_CLIP_CONFIG))
    open_clip.add_model_config(config_path)
    torch.manual_seed(0)
    model = open_clip.create_model(TINY_CLIP_ARCH)
    weights = folder / "tiny.pt"
    torch.save(model.state_dict(), weights)
    return f"open_clip:{TINY_CLIP_ARCH}:{weights}"


@pytest.fixture(scope="module")
def offline_models():
    """The offline captioner and scorer, built once per module (refinement tests reuse them)."""
    from visdiff.options import RunOptions
    from visdiff.stages import RunStages

    return RunStages(RunOptions(show_progress=False)).built_models()


@pytest.fixture
def dark_and_bright(tmp_path):
    """Six dark images (A) and six bright ones (B)."""
    a, b = tmp_path / "dark", tmp_path / "bright"
    for i in range(6):
        make_image(a / f"{i}.png", (35, 35, 35), noise_seed=i)
        make_image(b / f"{i}.png", (215, 215, 215), noise_seed=50 + i)
    return a, b


@pytest.fixture
def run_stages_built(monkeypatch) -> list:
    """Every RunStages built while the test runs, in order."""
    from visdiff.stages import RunStages

    built, build = [], RunStages.__init__

    def counting(self, *args, **kwargs):
        built.append(self)
        build(self, *args, **kwargs)

    monkeypatch.setattr(RunStages, "__init__", counting)
    return built


@pytest.fixture
def full_disk(monkeypatch):
    """``full_disk(folder)``: from then on, every atomic write of a file under ``folder``
    fails as on a full disk (ENOSPC at the write, as the kernel answers), whoever runs as root."""
    import errno
    import io
    import os

    from visdiff import atomic

    class FullDiskFile(io.RawIOBase):
        def writable(self) -> bool:
            return True

        def write(self, data) -> int:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    class OsWithAFullFolder:
        """``os`` as visdiff.atomic sees it, but the files it opens under the folder are full."""

        def __init__(self, folder: Path) -> None:
            self.folder, self.full_fds = Path(folder).resolve(), set()

        def __getattr__(self, name):
            return getattr(os, name)

        def open(self, path, flags, mode=0o777):
            fd = os.open(path, flags, mode)
            if Path(path).resolve().is_relative_to(self.folder):
                self.full_fds.add(fd)
            return fd

        def fdopen(self, fd, mode="r"):
            if fd in self.full_fds:
                os.close(fd)
                return io.BufferedWriter(FullDiskFile())
            return os.fdopen(fd, mode)

    return lambda folder: monkeypatch.setattr(atomic, "os", OsWithAFullFolder(folder))


class RecordingProposer:
    """Proposes ``phrases`` and records the keys of the images of A and of B it was shown."""

    spec = "recording"

    def __init__(self, phrases: list[str]) -> None:
        self.phrases = list(phrases)
        self.seen: list[tuple[list[str], list[str]]] = []

    def propose(self, context):
        self.seen.append((context.set_a.keys, context.set_b.keys))
        return list(self.phrases)

    def describe(self):
        return {"spec": self.spec}
