"""Run options: one frozen object with every setting of a run, shared by the Python API, the
CLI and the benchmark.

Adding an option: a field here (with its check in ``__post_init__``), its use in the stage
that needs it (:mod:`visdiff.stages`), and its declaration in :mod:`visdiff.cli.options`.
Fields marked ``RUNTIME`` change how a run executes, never its results; the others make up
:meth:`RunOptions.identity`, which results and benchmark folders record.
"""

from __future__ import annotations

import math
import os
from urllib.parse import urlsplit
from dataclasses import asdict, dataclass, field, fields, replace

from visdiff.cache_root import CacheRoot
from visdiff.devices import check_device
from visdiff.errors import InputError
from visdiff.redaction import redact_url
from visdiff.profiles import DEFAULT_PROFILE, Profile, get_profile
from visdiff.proposers import CHAT_PROPOSERS
from visdiff.ranking import DEFAULT_ALPHA
from visdiff.registry import parse_spec

RUNTIME = {"runtime": True}


def check_url(url: str) -> str:
    """An http(s) endpoint URL, or ``InputError`` saying what a valid one looks like."""
    parsed = urlsplit(url) if isinstance(url, str) else None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise InputError(f"base URL {redact_url(str(url))!r} is not an http(s) URL; "
                         "expected e.g. http://localhost:8000/v1 or https://api.openai.com/v1")
    return url


@dataclass(frozen=True)
class RunOptions:
    """Every setting of a run. Stage specs left ``None`` come from ``profile``.

    Parameters
    ----------
    profile : {"offline", "laptop", "paper"}
        Default stage choices (see :mod:`visdiff.profiles`).
    captioner, proposer, scorer : str, optional
        Stage specs overriding the profile's (``blip2:Salesforce/blip2-flan-t5-xxl``,
        ``llm:gpt-4o``, ``open_clip:ViT-bigG-14:laion2b_s39b_b160k``).
    llm : str, optional
        Chat model of the llm/vlm proposer; with a non-chat profile proposer it selects ``llm:MODEL``.
    base_url : str, optional
        OpenAI-compatible endpoint of the chat proposer and of an ``openai:`` captioner.
    rounds, samples_per_set : int
        Proposal rounds, and images sampled per set per round (llm/vlm proposers).
    seed : int
        Seeds the proposer's sampling.
    alpha : float
        False-discovery rate for the ``significant`` flag.
    both_directions : bool
        Also propose and rank phrases more true of B.
    device : str, optional
        Device of the scorer and local captioners (default: the best available).
    batch_size, caption_batch_size : int
        Images per forward pass of the scorer and of the captioner.
    cache_dir, use_cache
        Cache root (default ``$VISDIFF_CACHE_DIR`` or the user cache dir), on or off.
    show_progress : bool, optional
        Progress bars on stderr (default: only on a terminal).
    """

    profile: str = DEFAULT_PROFILE
    captioner: str | None = None
    proposer: str | None = None
    scorer: str | None = None
    llm: str | None = None
    base_url: str | None = None
    rounds: int = 3
    samples_per_set: int = 20
    seed: int = 0
    alpha: float = DEFAULT_ALPHA
    both_directions: bool = False
    device: str | None = field(default=None, metadata=RUNTIME)
    batch_size: int = field(default=64, metadata=RUNTIME)
    caption_batch_size: int = field(default=8, metadata=RUNTIME)
    cache_dir: str | os.PathLike | None = field(default=None, metadata=RUNTIME)
    use_cache: bool = field(default=True, metadata=RUNTIME)
    show_progress: bool | None = field(default=None, metadata=RUNTIME)

    def __post_init__(self) -> None:
        if isinstance(self.profile, Profile):
            object.__setattr__(self, "profile", self.profile.name)
        get_profile(self.profile)
        for name in ("rounds", "samples_per_set", "batch_size", "caption_batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"{name} must be a whole number >= 1, got {value!r}")
        if not isinstance(self.alpha, (int, float)) or not (0 < self.alpha < 1) or math.isnan(self.alpha):
            raise InputError(f"alpha must be in (0, 1), got {self.alpha!r}")
        for name in ("captioner", "proposer", "scorer"):
            spec = getattr(self, name)
            if spec is not None and not isinstance(spec, str):
                raise InputError(f"{name} must be a spec string here, got {type(spec).__name__}")
        check_device(self.device)
        if self.base_url is not None:
            check_url(self.base_url)

    @classmethod
    def build(cls, options: RunOptions | None = None, **keywords) -> RunOptions:
        """``options`` (default: all defaults) with ``keywords`` replacing its fields; an
        unknown keyword is an ``InputError`` naming the options there are."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(keywords) - names)
        if unknown:
            raise InputError(f"unknown run option(s) {', '.join(unknown)}; options: {', '.join(sorted(names))}")
        return replace(options or cls(), **keywords)

    def replace(self, **keywords) -> RunOptions:
        return RunOptions.build(self, **keywords)

    def identity(self) -> dict:
        """The settings that shape results (everything but how the run executes), as recorded in
        results: credentials in the endpoint URL are masked."""
        settings = {f.name: getattr(self, f.name) for f in fields(self) if not f.metadata.get("runtime")}
        return {**settings, "base_url": redact_url(self.base_url)}

    def as_dict(self) -> dict:
        return asdict(self)

    def cache_root(self) -> CacheRoot:
        return CacheRoot.resolve(self.cache_dir, use_cache=self.use_cache)

    @property
    def resolved_profile(self) -> Profile:
        return get_profile(self.profile)

    def captioner_spec(self) -> str:
        return self.captioner or self.resolved_profile.captioner

    def scorer_spec(self) -> str:
        return self.scorer or self.resolved_profile.scorer

    def proposer_spec(self) -> str:
        """The proposer spec after applying ``llm``: it picks the chat model of an llm/vlm
        proposer, and turns the profile's non-chat proposer into ``llm:MODEL``."""
        spec = parse_spec(self.proposer or self.resolved_profile.proposer)
        if not self.llm:
            return str(spec)
        if spec.backend in CHAT_PROPOSERS:
            return f"{spec.backend}:{self.llm}"
        if self.proposer is None:
            return f"llm:{self.llm}"
        raise InputError(
            f"--llm {self.llm!r} applies to the {'/'.join(sorted(CHAT_PROPOSERS))} proposers, not {self.proposer!r}"
        )
