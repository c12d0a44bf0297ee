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
from visdiff.embeddings.cache import DEFAULT_SHARD_IMAGES
from visdiff.embeddings.writer import DEFAULT_SHARD_SECONDS
from visdiff.errors import InputError
from visdiff.redaction import redact_url
from visdiff.profiles import DEFAULT_PROFILE, Profile, get_profile
from visdiff.prompts import get_prompt_set
from visdiff.proposers import PROPOSERS
from visdiff.ranking import DEFAULT_ALPHA, DEFAULT_MERGE_THRESHOLD
from visdiff.registry import parse_spec

RUNTIME = {"runtime": True}
# ``temperature="default"``: send no temperature, the provider's default applies (same for max_tokens).
PROVIDER_DEFAULT = "default"


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
    prompts : str, optional
        Prompt set of the proposers, captioners and judge: ``strict``, ``paper`` or a folder of
        templates (default: the profile's; see :mod:`visdiff.prompts`).
    temperature, max_tokens : float or int or "default", optional
        LLM request settings of the proposer; ``"default"`` sends none (the provider's default);
        None takes the profile's.
    system_message : str, optional
        System message of the proposer's chat requests; ``""`` sends none; None takes the prompt
        set's ``system.txt`` (none when the set has none).
    llm_seed : bool, optional
        Send a seed with each LLM request (default: the profile's).
    caption_beams, caption_max_tokens, caption_temperature : optional
        Caption decoding of local captioners: beam width, longest caption in new tokens,
        sampling temperature (0 = no sampling). None takes the profile's for that backend.
    alpha : float
        False-discovery rate for the ``significant`` flag.
    both_directions : bool
        Also propose and rank phrases more true of B.
    pair_by : str, optional
        Table column pairing images of A and B (the same generation prompt and seed, say):
        the llm proposer is shown the captions of each sampled pair side by side. Statistics
        stay over the whole sets. Sets must come from tables (see :mod:`visdiff.pairs`).
    refine : int
        Refinement rounds after the first ranking (chat proposers): the model sees the best
        hypotheses with their AUROC and the images they miss, and its new phrases are ranked
        with the rest; stops early when the best AUROC stops improving (see :mod:`visdiff.refine`).
    holdout : float
        Fraction of each set held out from the proposer (0: none): the proposer sees the rest,
        and AUROC, p and q come from the held-out images (see :mod:`visdiff.holdout`).
    merge, merge_threshold : bool, float
        Merge near-duplicate proposals: those whose text embeddings (the scorer's) have at least
        ``merge_threshold`` cosine similarity with a better-ranked proposal of the same
        direction are listed as its variants (see :func:`visdiff.ranking.merge_near_duplicates`).
    device : str, optional
        Device of the scorer and local captioners (default: the best available).
    batch_size, caption_batch_size : int
        Images per forward pass of the scorer and of the captioner.
    engine, engine_address
        Where the images missing from the cache are embedded: ``local`` (this process) or
        ``ray`` (Ray Data; on a new local Ray, or the cluster at ``engine_address``).
    shard_images, shard_seconds
        Fresh image embeddings are committed to the cache every ``shard_images`` images or
        ``shard_seconds`` seconds, so a killed run loses less than one shard of work.
    cache_dir, use_cache
        Cache root (default ``$VISDIFF_CACHE_DIR`` or the user cache dir), on or off.
    show_progress : bool, optional
        Progress bars on stderr (default: only on a terminal).
    name_a, name_b : str, optional
        What to call sets A and B in reports and results (default: the folder's name, or the
        table's group); labels only, so not part of :meth:`identity`.
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
    pair_by: str | None = None
    refine: int = 0
    holdout: float = 0.0
    merge: bool = True
    merge_threshold: float = DEFAULT_MERGE_THRESHOLD
    prompts: str | None = None
    temperature: float | str | None = None
    max_tokens: int | str | None = None
    system_message: str | None = None
    llm_seed: bool | None = None
    caption_beams: int | None = None
    caption_max_tokens: int | None = None
    caption_temperature: float | None = None
    device: str | None = field(default=None, metadata=RUNTIME)
    batch_size: int = field(default=64, metadata=RUNTIME)
    caption_batch_size: int = field(default=8, metadata=RUNTIME)
    engine: str = field(default="local", metadata=RUNTIME)
    engine_address: str | None = field(default=None, metadata=RUNTIME)
    shard_images: int = field(default=DEFAULT_SHARD_IMAGES, metadata=RUNTIME)
    shard_seconds: float = field(default=DEFAULT_SHARD_SECONDS, metadata=RUNTIME)
    cache_dir: str | os.PathLike | None = field(default=None, metadata=RUNTIME)
    use_cache: bool = field(default=True, metadata=RUNTIME)
    show_progress: bool | None = field(default=None, metadata=RUNTIME)
    name_a: str | None = field(default=None, metadata=RUNTIME)
    name_b: str | None = field(default=None, metadata=RUNTIME)

    def __post_init__(self) -> None:
        if isinstance(self.profile, Profile):
            object.__setattr__(self, "profile", self.profile.name)
        get_profile(self.profile)
        for name in ("rounds", "samples_per_set", "batch_size", "caption_batch_size", "shard_images"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"{name} must be a whole number >= 1, got {value!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise InputError(f"seed must be a whole number >= 0, got {self.seed!r}")
        if isinstance(self.refine, bool) or not isinstance(self.refine, int) or self.refine < 0:
            raise InputError(f"refine must be a whole number of rounds >= 0, got {self.refine!r}")
        if self.pair_by is not None and (not isinstance(self.pair_by, str) or not self.pair_by.strip()):
            raise InputError(f"pair_by must name a table column, got {self.pair_by!r}")
        if not isinstance(self.alpha, (int, float)) or not (0 < self.alpha < 1) or math.isnan(self.alpha):
            raise InputError(f"alpha must be in (0, 1), got {self.alpha!r}")
        if isinstance(self.holdout, bool) or not isinstance(self.holdout, (int, float)) or not 0 <= self.holdout < 1:
            raise InputError(f"holdout must be a fraction in [0, 1), got {self.holdout!r}")
        # Refinement shows the model images and AUROCs of whole sets, and pairing keeps partners that a
        # per-set split would separate: neither yet keeps to the proposal split.
        for name, value in (("refine", self.refine), ("pair_by", self.pair_by)):
            if self.holdout and value:
                raise InputError(f"holdout and {name} exclude each other: {name} would show the proposer "
                                 "held-out images")
        if isinstance(self.merge_threshold, bool) or not isinstance(self.merge_threshold, (int, float)) or \
                not -1 <= self.merge_threshold <= 1:
            raise InputError(f"merge_threshold must be a cosine similarity in [-1, 1], got {self.merge_threshold!r}")
        if isinstance(self.shard_seconds, bool) or not isinstance(self.shard_seconds, (int, float)) or \
                not self.shard_seconds > 0:
            raise InputError(f"shard_seconds must be a number of seconds > 0, got {self.shard_seconds!r}")
        for name in ("captioner", "proposer", "scorer"):
            spec = getattr(self, name)
            if spec is not None and not isinstance(spec, str):
                raise InputError(f"{name} must be a spec string here, got {type(spec).__name__}")
        # A string is truthy whatever it says: both_directions="no" ran both directions.
        for name, choices in (("both_directions", "True or False"), ("merge", "True or False"),
                              ("use_cache", "True or False"), ("llm_seed", "True, False or None"),
                              ("show_progress", "True, False or None")):
            value = getattr(self, name)
            if not isinstance(value, bool) and not (value is None and "None" in choices):
                raise InputError(f"{name} must be {choices}, got {value!r}")
        for name in ("llm", "system_message", "engine_address", "name_a", "name_b"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise InputError(f"{name} must be a string, got {value!r}")
        if self.cache_dir is not None and not isinstance(self.cache_dir, (str, os.PathLike)):
            raise InputError(f"cache_dir must be a folder path, got {self.cache_dir!r}")
        self._check_generation()
        if self.prompts is not None:
            get_prompt_set(self.prompts)  # a misspelt set fails before any image is read
        check_device(self.device)
        if self.base_url is not None:
            check_url(self.base_url)

    def _check_generation(self) -> None:
        for name, kind in (("temperature", float), ("max_tokens", int)):
            value = getattr(self, name)
            if isinstance(value, str) and value != PROVIDER_DEFAULT:
                try:
                    value = kind(value)
                except ValueError:
                    raise InputError(f"{name} must be a number or {PROVIDER_DEFAULT!r}, got {value!r}") from None
                object.__setattr__(self, name, value)
        for name in ("temperature", "caption_temperature"):
            value = getattr(self, name)
            if value not in (None, PROVIDER_DEFAULT) and (isinstance(value, bool) or not isinstance(value, (int, float))
                                                           or not 0 <= value <= 2):
                raise InputError(f"{name} must be between 0 and 2, got {value!r}")
        for name in ("max_tokens", "caption_beams", "caption_max_tokens"):
            value = getattr(self, name)
            if value not in (None, PROVIDER_DEFAULT) and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise InputError(f"{name} must be a whole number >= 1, got {value!r}")
        if self.caption_beams is not None and self.caption_temperature:
            raise InputError("caption_beams and caption_temperature > 0 exclude each other: beam search or sampling")

    @classmethod
    def build(cls, options: RunOptions | None = None, **keywords) -> RunOptions:
        """``options`` (default: all defaults) with ``keywords`` replacing its fields; an
        unknown keyword is an ``InputError`` naming the options there are."""
        if options is not None and not isinstance(options, RunOptions):
            raise InputError(f"options must be a RunOptions (or give its fields as keywords), got {type(options).__name__}")
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

    def prompt_set(self) -> str:
        """The prompt set's name or folder (the profile's unless ``prompts`` is given)."""
        return self.prompts or self.resolved_profile.prompts

    def chat_settings(self) -> dict:
        """Settings of the chat proposer's requests, profile applied: ``temperature`` and
        ``max_tokens`` (None: not sent), ``send_seed``, ``system_message`` (None: the prompt
        set's) and ``prompts``."""
        profile = self.resolved_profile

        def pick(value, default):
            return default if value is None else None if value == PROVIDER_DEFAULT else value

        return {
            "temperature": pick(self.temperature, profile.temperature),
            "max_tokens": pick(self.max_tokens, profile.max_tokens),
            "send_seed": profile.llm_seed if self.llm_seed is None else self.llm_seed,
            "system_message": self.system_message,
            "prompts": self.prompt_set(),
        }

    def caption_decoding(self, backend: str) -> dict:
        """Decoding keywords for a captioner of ``backend``: the profile's for it, then the
        ``caption_*`` options given. Empty when neither sets any (the backend's defaults)."""
        decoding = dict(self.resolved_profile.caption_decoding.get(backend, {}))
        given = {"num_beams": self.caption_beams, "max_new_tokens": self.caption_max_tokens,
                 "temperature": self.caption_temperature}
        if self.caption_beams is not None:
            decoding.pop("temperature", None)
        if self.caption_temperature:
            decoding.pop("num_beams", None)
        decoding.update({k: v for k, v in given.items() if v is not None})
        return decoding

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
        if PROPOSERS.has(spec.backend, "chat"):
            return f"{spec.backend}:{self.llm}"
        if self.proposer is None:
            return f"llm:{self.llm}"
        raise InputError(
            f"--llm {self.llm!r} applies to the {'/'.join(PROPOSERS.names_with('chat'))} proposers, not {self.proposer!r}"
        )
