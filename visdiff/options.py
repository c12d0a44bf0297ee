"""Run options: one frozen object with every setting of a run, shared by the Python API, the
CLI and the benchmark.

Adding an option: a field here (a number's range as :class:`Bounds` in its metadata: checked
here, shown by the CLI; any other check in ``__post_init__``), its use in the stage that needs
it (:mod:`visdiff.stages`), and its declaration in :mod:`visdiff.cli.options`.
Fields marked ``RUNTIME`` change how a run executes, never its results; the others make up
:meth:`RunOptions.identity`, which results and benchmark folders record.
"""

from __future__ import annotations

import math
import os
from urllib.parse import urlsplit
from dataclasses import asdict, dataclass, field, fields, replace

from visdiff.cache_root import CacheRoot
from visdiff.devices import PRECISIONS, check_device
from visdiff.embeddings.cache import DEFAULT_SHARD_IMAGES
from visdiff.embeddings.settings import EmbedSettings
from visdiff.embeddings.writer import DEFAULT_SHARD_SECONDS
from visdiff.errors import InputError, OptionValueError
from visdiff.llm.pool import DEFAULT_LLM_CONCURRENCY
from visdiff.llm.prices import PriceTable
from visdiff.redaction import redact_url
from visdiff.profiles import DEFAULT_PROFILE, Profile, get_profile
from visdiff.prompts import get_prompt_set
from visdiff.proposers import PROPOSERS
from visdiff.ranking import DEFAULT_ALPHA, DEFAULT_MERGE_THRESHOLD
from visdiff.registry import parse_spec

RUNTIME = {"runtime": True}
RANKER_MODES = ("visdiff", "reference")


@dataclass(frozen=True)
class Bounds:
    """The values a numeric option takes, declared once on its field: :class:`RunOptions`
    checks them and the CLI's help shows them (``bounds_of``). ``what`` says them in words."""

    what: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    whole: bool = False

    def check(self, name: str, value) -> None:
        """``InputError`` naming the option, its values and the one given, unless ``value`` is one."""
        kinds = int if self.whole else (int, float)
        if isinstance(value, bool) or not isinstance(value, kinds) or math.isnan(value) or not self._within(value):
            raise OptionValueError(name, self.what, value)

    def _within(self, value: float) -> bool:
        above = self.low is None or (value > self.low if self.low_open else value >= self.low)
        below = self.high is None or (value < self.high if self.high_open else value <= self.high)
        return above and below


def bounded(default, bounds: Bounds, *, runtime: bool = False):
    """A field with ``bounds`` (and ``RUNTIME`` when it changes only how a run executes)."""
    return field(default=default, metadata={"bounds": bounds, **(RUNTIME if runtime else {})})


def bounds_of(name: str) -> Bounds | None:
    """The declared bounds of option ``name``, or None."""
    return next(f.metadata.get("bounds") for f in fields(RunOptions) if f.name == name)


AT_LEAST_ONE = Bounds("a whole number >= 1", low=1, whole=True)
AT_LEAST_ZERO = Bounds("a whole number >= 0", low=0, whole=True)
# Sampling temperatures: the range OpenAI-compatible servers accept.
TEMPERATURE = Bounds("between 0 and 2", low=0, high=2)
# ``temperature="default"``: send no temperature, the provider's default applies (same for max_tokens).
PROVIDER_DEFAULT = "default"


# Text options where "" would run the default (or use the current folder) without a word, with
# what each takes. system_message="" is not among them: it means "send none".
NOT_EMPTY = {
    "captioner": "a non-empty captioner spec such as 'hf:Salesforce/blip-image-captioning-base'",
    "proposer": "a non-empty proposer spec such as 'llm:gpt-4o' or 'vocabulary'",
    "scorer": "a non-empty scorer spec such as 'open_clip:ViT-B-32:laion2b_s34b_b79k'",
    "llm": "a non-empty chat model name such as 'gpt-4o'",
    "prompts": "a non-empty prompt set: 'strict', 'paper' or a folder of templates",
    "cache_dir": "a non-empty folder path",
    "name_a": "a non-empty name for set A",
    "name_b": "a non-empty name for set B",
    "goal": "a non-empty question, such as 'why does the classifier fail on A'",
}
# Settings of the requests a chat proposer sends; no other proposer reads them.
LLM_REQUEST_OPTIONS = ("temperature", "max_tokens", "system_message", "llm_seed", "goal")
# How a proposer samples, for those that sample (chat ones and ``sampled`` ones), with their flags.
SAMPLING_OPTIONS = {"rounds": "--rounds", "samples_per_set": "--samples", "hypotheses": "--hypotheses"}


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
        Proposal rounds, and images sampled per set per round (llm/vlm proposers); when both
        sets have no more images than ``samples_per_set``, one round (each would show them all).
    goal : str, optional
        The researcher's question ("what makes these images memorable"), put into every
        proposer and refinement request (template ``goal`` of the prompt set); None: none.
    hypotheses : int
        Hypotheses asked of the chat model per round (10, as in the paper).
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
    purity : float
        Trade a fraction ``1 - purity`` of set A for as many random images of set B before
        comparing (paper Fig. 4; :func:`visdiff.purity.trade_for_purity`, drawn from ``seed``).
    rare : float, optional
        Look for differences carried by few images of A (about this fraction, in (0, 0.5]): the
        proposer is shown the images of A least like B, and rows are ranked by a tail test
        (see :mod:`visdiff.rare` and :mod:`visdiff.tail_stats`); None: off.
    merge, merge_threshold : bool, float
        Merge near-duplicate proposals: those whose text embeddings (the scorer's) have at least
        ``merge_threshold`` cosine similarity with a better-ranked proposal of the same
        direction are listed as its variants (see :func:`visdiff.ranking.merge_near_duplicates`).
        ``merge`` None takes the profile's (off under ``paper``).
    precision : {"auto", "fp32", "fp16", "bf16"}, optional
        The scorer's arithmetic ("auto": fp16 on accelerators, fp32 on CPU); None takes the
        profile's (``paper``: fp32, as the reference).
    full_decode : bool, optional
        Decode JPEGs at full scale before resizing (False: at the reduced scale that still
        covers the model's input, faster); None takes the profile's (``paper``: full).
    ranker_mode : {"visdiff", "reference"}, optional
        How the vqa and caption-llm rankers ask: visdiff's way (vqa: P(yes) from the logits;
        caption-llm: 20 statements a request) or the reference code's (vqa: a sampled answer,
        "yes" in it = 1; caption-llm: one caption and concept a request, with examples, at
        temperature 0); None takes the profile's (``paper``: reference).
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
    llm_concurrency : int
        LLM requests in flight at a time, shared by every chat client of the run (captioner,
        proposer rounds, scorer, judge); answers are the same as one at a time (see
        :mod:`visdiff.llm.pool`).
    prices : sequence of str
        ``MODEL=IN/OUT`` USD per million input/output tokens, for the cost estimate of the
        run's token usage, replacing the built-in list prices (:mod:`visdiff.llm.prices`).
    """

    profile: str = DEFAULT_PROFILE
    captioner: str | None = None
    proposer: str | None = None
    scorer: str | None = None
    llm: str | None = None
    base_url: str | None = None
    rounds: int = bounded(3, AT_LEAST_ONE)
    samples_per_set: int = bounded(20, AT_LEAST_ONE)
    hypotheses: int = bounded(10, AT_LEAST_ONE)
    goal: str | None = None
    seed: int = bounded(0, AT_LEAST_ZERO)
    alpha: float = bounded(DEFAULT_ALPHA, Bounds("in (0, 1)", low=0, high=1, low_open=True, high_open=True))
    both_directions: bool = False
    pair_by: str | None = None
    refine: int = bounded(0, AT_LEAST_ZERO)
    holdout: float = bounded(0.0, Bounds("a fraction in [0, 1)", low=0, high=1, high_open=True))
    purity: float = bounded(1.0, Bounds("a fraction in [0, 1]", low=0, high=1))
    merge: bool | None = None
    merge_threshold: float = bounded(DEFAULT_MERGE_THRESHOLD, Bounds("a cosine similarity in [-1, 1]", low=-1, high=1))
    rare: float | None = bounded(None, Bounds("a fraction in (0, 0.5]", low=0, high=0.5, low_open=True))
    prompts: str | None = None
    temperature: float | str | None = bounded(None, TEMPERATURE)
    max_tokens: int | str | None = bounded(None, AT_LEAST_ONE)
    system_message: str | None = None
    llm_seed: bool | None = None
    caption_beams: int | None = bounded(None, AT_LEAST_ONE)
    caption_max_tokens: int | None = bounded(None, AT_LEAST_ONE)
    caption_temperature: float | None = bounded(None, TEMPERATURE)
    device: str | None = field(default=None, metadata=RUNTIME)
    precision: str | None = None
    full_decode: bool | None = None
    ranker_mode: str | None = None
    batch_size: int = bounded(64, AT_LEAST_ONE, runtime=True)
    caption_batch_size: int = bounded(8, AT_LEAST_ONE, runtime=True)
    engine: str = field(default="local", metadata=RUNTIME)
    engine_address: str | None = field(default=None, metadata=RUNTIME)
    shard_images: int = bounded(DEFAULT_SHARD_IMAGES, AT_LEAST_ONE, runtime=True)
    shard_seconds: float = bounded(DEFAULT_SHARD_SECONDS, Bounds("a number of seconds > 0", low=0, low_open=True),
                                   runtime=True)
    cache_dir: str | os.PathLike | None = field(default=None, metadata=RUNTIME)
    use_cache: bool = field(default=True, metadata=RUNTIME)
    show_progress: bool | None = field(default=None, metadata=RUNTIME)
    name_a: str | None = field(default=None, metadata=RUNTIME)
    name_b: str | None = field(default=None, metadata=RUNTIME)
    llm_concurrency: int = bounded(DEFAULT_LLM_CONCURRENCY, AT_LEAST_ONE, runtime=True)
    prices: tuple[str, ...] = field(default=(), metadata=RUNTIME)

    def __post_init__(self) -> None:
        if isinstance(self.profile, Profile):
            object.__setattr__(self, "profile", self.profile.name)
        get_profile(self.profile)
        self._numbers_from_text()
        for option in fields(self):
            value = getattr(self, option.name)
            if "bounds" in option.metadata and value is not None and value != PROVIDER_DEFAULT:
                option.metadata["bounds"].check(option.name, value)
        if self.ranker_mode is not None and self.ranker_mode not in RANKER_MODES:
            raise InputError(f"unknown ranker mode {self.ranker_mode!r}; choose one of: {', '.join(RANKER_MODES)}")
        if self.precision is not None and self.precision not in ("auto", *PRECISIONS):
            raise InputError(f"unknown precision {self.precision!r}; choose one of: auto, {', '.join(PRECISIONS)}")
        if self.caption_beams is not None and self.caption_temperature:
            raise InputError("caption_beams and caption_temperature > 0 exclude each other: beam search or sampling")
        if self.pair_by is not None and (not isinstance(self.pair_by, str) or not self.pair_by.strip()):
            raise InputError(f"pair_by must name a table column, got {self.pair_by!r}")
        # Refinement shows the model images and AUROCs of whole sets, and pairing keeps partners that a
        # per-set split would separate: neither yet keeps to the proposal split.
        for name, value in (("refine", self.refine), ("pair_by", self.pair_by)):
            if self.holdout and value:
                raise InputError(f"holdout and {name} exclude each other: {name} would show the proposer "
                                 "held-out images")
        for name in ("captioner", "proposer", "scorer"):
            spec = getattr(self, name)
            if spec is not None and not isinstance(spec, str):
                raise InputError(f"{name} must be a spec string here, got {type(spec).__name__}")
        # A string is truthy whatever it says: both_directions="no" ran both directions.
        for name, choices in (("both_directions", "True or False"), ("merge", "True, False or None"),
                              ("use_cache", "True or False"), ("full_decode", "True, False or None"),
                              ("llm_seed", "True, False or None"), ("show_progress", "True, False or None")):
            value = getattr(self, name)
            if not isinstance(value, bool) and not (value is None and "None" in choices):
                raise InputError(f"{name} must be {choices}, got {value!r}")
        for name in ("llm", "system_message", "goal", "engine_address", "name_a", "name_b"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise InputError(f"{name} must be a string, got {value!r}")
        prices = () if self.prices is None else self.prices  # None: the CLI's --price not given
        if isinstance(prices, str) or not all(isinstance(text, str) for text in prices):
            raise InputError(f"prices must be a sequence of 'MODEL=IN/OUT' texts, got {prices!r}")
        object.__setattr__(self, "prices", tuple(prices))
        PriceTable.parse(self.prices)  # a malformed price is a usage error before any work
        if self.cache_dir is not None and not isinstance(self.cache_dir, (str, os.PathLike)):
            raise InputError(f"cache_dir must be a folder path, got {self.cache_dir!r}")
        for name, requirement in NOT_EMPTY.items():
            value = getattr(self, name)
            if isinstance(value, str) and not value.strip():
                raise OptionValueError(name, requirement, value)
        if self.prompts is not None:
            get_prompt_set(self.prompts)  # a misspelt set fails before any image is read
        check_device(self.device)
        if self.base_url is not None:
            check_url(self.base_url)
        self._check_llm_requests_sent()

    def _numbers_from_text(self) -> None:
        """LLM settings given as text (the CLI's ``--temperature 0.2``, or ``default``) made numbers."""
        for name, kind in (("temperature", float), ("max_tokens", int)):
            value = getattr(self, name)
            if isinstance(value, str) and value != PROVIDER_DEFAULT:
                try:
                    value = kind(value)
                except ValueError:
                    raise InputError(f"{name} must be a number or {PROVIDER_DEFAULT!r}, got {value!r}") from None
                object.__setattr__(self, name, value)

    def _check_llm_requests_sent(self) -> None:
        """LLM request settings given for a proposer that sends no LLM requests (the offline
        ``vocabulary``), and rounds, samples or hypotheses other than the defaults for one that
        samples nothing, are usage errors, not silently ignored."""
        spec = PROPOSERS.check(self.proposer_spec())
        defaults = {f.name: f.default for f in fields(self)}
        changed = [name for name in SAMPLING_OPTIONS if getattr(self, name) != defaults[name]]
        if changed and not (PROPOSERS.has(spec.backend, "chat") or PROPOSERS.has(spec.backend, "sampled")):
            flag = SAMPLING_OPTIONS[changed[0]]
            raise InputError(f"{flag} {getattr(self, changed[0])} ({changed[0]}=) sets how a proposer samples; the "
                             f"proposer {str(spec)!r} takes no sample: give --llm MODEL (llm=), or leave {flag} out")
        given = [name for name in LLM_REQUEST_OPTIONS if getattr(self, name) is not None]
        if given and not PROPOSERS.has(spec.backend, "chat"):
            flag = "--" + given[0].replace("_", "-")
            raise InputError(f"{flag} ({given[0]}=) sets the requests of an LLM proposer; the proposer {str(spec)!r} "
                             f"sends none: give --llm MODEL (llm=), or leave {flag} out")

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

    def embed_settings(self) -> EmbedSettings:
        """How this run embeds images: the scoring stage's and the engines' settings."""
        return EmbedSettings(batch_size=self.batch_size, shard_images=self.shard_images,
                             shard_seconds=self.shard_seconds, show_progress=self.show_progress,
                             full_decode=self.decodes_full)

    def replace(self, **keywords) -> RunOptions:
        return RunOptions.build(self, **keywords)

    def identity(self) -> dict:
        """The settings that shape results (everything but how the run executes), as recorded in
        results: credentials in the endpoint URL are masked."""
        settings = {f.name: getattr(self, f.name) for f in fields(self) if not f.metadata.get("runtime")}
        return {**settings, "merge": self.merges, "precision": self.scorer_precision, "full_decode": self.decodes_full,
                "ranker_mode": "reference" if self.ranks_as_reference else "visdiff",
                "base_url": redact_url(self.base_url)}

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
            "goal": self.goal,
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

    @property
    def scorer_precision(self) -> str:
        """The scorer's precision: ``precision``, else the profile's."""
        return self.resolved_profile.precision if self.precision is None else self.precision

    @property
    def ranks_as_reference(self) -> bool:
        """Whether the vqa and caption-llm rankers ask as the reference did: ``ranker_mode``, else the profile's."""
        return (self.ranker_mode or self.resolved_profile.ranker_mode) == "reference"

    @property
    def decodes_full(self) -> bool:
        """Whether JPEGs are decoded at full scale: ``full_decode``, else the profile's."""
        return self.resolved_profile.full_decode if self.full_decode is None else self.full_decode

    @property
    def merges(self) -> bool:
        """Whether near-duplicate proposals are merged: ``merge``, else the profile's (the
        paper keeps every proposal as it came)."""
        return self.resolved_profile.merge if self.merge is None else self.merge

    def captioner_spec(self) -> str:
        """The captioner spec; a backend named without a model gets the profile's model for it."""
        spec = self.captioner or self.resolved_profile.captioner
        model = self.resolved_profile.backend_models.get(spec.strip())
        return f"{spec.strip()}:{model}" if model else spec

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
