"""The stages of one run, built from :class:`RunOptions` (or given built): the one place where
profiles, specs and run options turn into a captioning stage, a scoring stage and a proposer.

Built objects passed in (``captioner=``, ``proposer=``, ``scorer=``) are used as they are, so a
benchmark loads its models once for many pairs. Every stage records its own seconds in the
run's :class:`Timings`; nested stages (captioning done for the proposer) count apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from functools import cached_property

from visdiff.captioners import CAPTIONERS, Captioner
from visdiff.captioning import Captioning
from visdiff.embeddings.pair_scoring import PairScoring
from visdiff.embeddings.scoring import Scoring, create_scoring
from visdiff.engines import ENGINES
from visdiff.errors import InputError
from visdiff.image_sets import ImageSet
from visdiff.llm.pool import RequestPool
from visdiff.llm.prices import PriceTable
from visdiff.llm.usage import usage_record
from visdiff.options import RunOptions
from visdiff.pairs import paired_positions
from visdiff.prompts import get_prompt_set
from visdiff.proposers import PROPOSERS, ProposalContext, Proposer
from visdiff.ranking import clean_hypotheses
from visdiff.scorers import SCORERS, Scorer
from visdiff.timing import Timings

BUILT_STAGES = ("captioner", "proposer", "scorer")
# Run options only some scorers take: the capability that takes each, its flag, and the value
# that changes nothing (any scorer "takes" it).
SCORER_SETTINGS = {"precision": ("precision", "--precision", "auto"),
                   "ranker_mode": ("reference_mode", "--ranker-mode", "visdiff")}


def build_proposer(options: RunOptions, *, cache, llm_pool: RequestPool) -> Proposer:
    """The proposer ``options`` name; chat proposers get the LLM options (prompt set and
    request settings, profile applied), the cache and the run's LLM request pool."""
    spec = PROPOSERS.check(options.proposer_spec())
    if PROPOSERS.has(spec.backend, "sampled"):
        return PROPOSERS.create(spec, rounds=options.rounds, samples_per_set=options.samples_per_set,
                                n_hypotheses=options.hypotheses, device=options.device)
    if not PROPOSERS.has(spec.backend, "chat"):
        return PROPOSERS.create(spec)
    return PROPOSERS.create(spec, base_url=options.base_url, rounds=options.rounds,
                            samples_per_set=options.samples_per_set, n_hypotheses=options.hypotheses,
                            cache=cache, llm_pool=llm_pool,
                            **options.chat_settings())


# What a built stage object must have (the protocols in visdiff.captioners, .proposers and
# .scorers); a scorer scores embeddings (``score``) or image-text pairs (``score_pairs``).
BUILT_NEEDS = {"captioner": ("spec", "cache_id", "caption_images"), "proposer": ("spec", "propose", "describe"),
               "scorer": ("spec", "cache_id")}


def check_built(stage: str, built) -> None:
    """``InputError`` naming what is missing when ``built`` is no built ``stage`` object."""
    needs = list(BUILT_NEEDS[stage])
    missing = [name for name in needs if not hasattr(built, name)]
    if stage == "scorer":
        needs.append("score or score_pairs")
        if not (hasattr(built, "score") or hasattr(built, "score_pairs")):
            missing.append(needs[-1])
    if missing:
        raise InputError(f"{stage}= takes a spec string or a built {stage} (with {', '.join(needs)}); "
                         f"{type(built).__name__} has no {', '.join(missing)}")


def caption_settings(options: RunOptions, spec: str, *, llm_pool: RequestPool) -> dict:
    """Prompt set, decoding and request pool keywords for a captioner built from ``spec``: the
    prompt set for backends with a caption prompt, the decoding the options (profile applied)
    give, the run's ``llm_pool`` for backends that send chat requests."""
    backend = CAPTIONERS.check(spec).backend
    settings = options.caption_decoding(backend)
    if CAPTIONERS.has(backend, "prompted"):
        settings["prompts"] = options.prompt_set()
    if CAPTIONERS.has(backend, "chat"):
        settings["llm_pool"] = llm_pool
    return settings


class RunStages:
    """Captioning, scoring and proposing for one run, sharing one cache root and one clock.

    Specs are checked here, before any image is read, and the scoring stage is built (its
    scorer checks the model its spec names) unless the run only captions (``captions_only``);
    so is the proposer when the run proposes (``proposing``: an LLM proposer's client checks
    for its API key). Models load on first use (a proposer that needs no captions never
    loads the captioner). Every chat client of the run (captioner, proposer, scorer, a bench's
    judge) shares ``llm_pool``: one bound on requests in flight, one 429 pause, one token count.
    """

    def __init__(self, options: RunOptions, *, captioner: Captioner | None = None,
                 proposer: Proposer | None = None, scorer: Scorer | None = None, captions_only: bool = False,
                 proposing: bool = False) -> None:
        if proposer is not None and options.llm:
            raise InputError("llm= selects the model of a proposer spec; it cannot change a built proposer")
        self.options = options
        self.cache = options.cache_root()
        self.cache.check_usable()
        self.timings = Timings()
        self.llm_pool = RequestPool(options.llm_concurrency)
        self.prices = PriceTable.parse(options.prices)
        # Provenance: every proposal round of this run, in order (see ChatProposer.propose).
        self.proposal_rounds: list[dict] = []
        self._built = {"captioner": captioner, "proposer": proposer, "scorer": scorer}
        for stage, built in self._built.items():
            if built is not None:
                check_built(stage, built)
        # Cheap checks first: a misspelt backend fails before any model loads or image is read.
        if captioner is None:
            CAPTIONERS.check(options.captioner_spec())
        scorer_backend = SCORERS.check(options.scorer_spec()).backend if scorer is None else None
        self.engine = ENGINES.create(options.engine, address=options.engine_address)
        proposer_backend = (PROPOSERS.check(options.proposer_spec()).backend if proposer is None
                            else getattr(proposer, "backend", None))
        self._check_proposer_needs(proposer, proposer_backend)
        self._check_scorer_takes_its_options(scorer_backend)
        if not captions_only and proposer is None and scorer is None:
            self._check_captioner_used(proposer_backend, scorer_backend)
        if not captions_only:
            # Built now: the scorer's constructor checks what its spec names (an open_clip
            # architecture and tag, packaged weights) without loading weights, so a misspelt
            # model fails before an image is read.
            self.scoring  # noqa: B018 - building it is the check
        if proposing:
            # A missing API key was said only after every image was embedded (and captioned).
            self.proposer  # noqa: B018 - building it is the check

    def _check_scorer_takes_its_options(self, backend: str | None) -> None:
        """A scorer setting that changes something (``--precision`` other than auto,
        ``--ranker-mode reference``, ``--full-decode``) given for a scorer that would not use it
        (``backend``; None: a built scorer) is a usage error, not silently ignored."""
        for option, (capability, flag, no_change) in SCORER_SETTINGS.items():
            value = getattr(self.options, option)
            if value is None or value == no_change or (backend is not None and SCORERS.has(backend, capability)):
                continue
            scorer = repr(self.options.scorer_spec()) if backend is not None else "given built"
            raise InputError(f"{flag} {value} ({option}=) applies to the {'/'.join(SCORERS.names_with(capability))} "
                             f"scorers; the scorer {scorer} takes none: leave {flag} out")
        if self.options.full_decode and backend is not None and SCORERS.has(backend, "pairwise"):
            raise InputError(f"--full-decode (full_decode=) applies to scorers of embeddings; the pairwise scorer "
                             f"{self.options.scorer_spec()!r} reads each image itself: leave --full-decode out")

    def _check_captioner_used(self, proposer_backend: str, scorer_backend: str) -> None:
        """A captioner given explicitly (not the profile's) that no stage would run is a usage
        error, not silently left out: only the proposers and scorers declared ``reads_captions``
        read captions. ``captions_only`` runs (``visdiff caption``) use the captioner by themselves."""
        options = self.options
        if (options.captioner is None or PROPOSERS.has(proposer_backend, "reads_captions")
                or SCORERS.has(scorer_backend, "reads_captions")):
            return
        raise InputError(f"--captioner {options.captioner!r} would not be used: the proposer "
                         f"{options.proposer_spec()!r} reads no captions; give --llm MODEL to propose from captions")

    def _check_proposer_needs(self, proposer: Proposer | None, backend: str | None) -> None:
        """``--pair-by`` and ``--refine`` need a chat proposer (``backend``) and their prompt templates."""
        options = self.options
        spec = proposer.spec if proposer is not None else options.proposer_spec()
        if options.pair_by and not PROPOSERS.has(backend, "paired"):
            raise InputError(f"--pair-by shows an LLM the captions of paired images; the proposer {spec!r} "
                             f"cannot use pairs: give --llm MODEL (the {'/'.join(PROPOSERS.names_with('paired'))} proposer)")
        if options.refine and not PROPOSERS.has(backend, "chat"):
            raise InputError(f"--refine asks a chat model for sharper hypotheses; the proposer {spec!r} has none: "
                             f"give --llm MODEL (an {'/'.join(PROPOSERS.names_with('chat'))} proposer)")
        # A built chat proposer loads its templates from its own prompt set.
        prompt_set = get_prompt_set(getattr(proposer, "prompt_set", None) if proposer is not None
                                    else options.prompt_set())
        for needed, template in ((options.pair_by, "propose_paired"), (options.refine, "refine")):
            if needed:
                prompt_set.load(template)  # InputError naming the missing file, before any image is read

    @classmethod
    def from_keywords(cls, options: RunOptions | None, keywords: dict, *, built: Sequence[str] = BUILT_STAGES,
                      captions_only: bool = False, proposing: bool = False,
                      stages: RunStages | None = None) -> RunStages:
        """Stages from ``options`` with ``keywords`` replacing its fields (the public API's
        calling convention; ``None`` means not given); the ``built`` stages among the keywords
        may be built objects, used as they are, or specs, which become options. ``stages``
        built already (the CLI builds one per command, checking its specs before any set is
        read) are returned as they are, and then take no options."""
        keywords = {name: value for name, value in keywords.items() if value is not None}
        if stages is not None:
            if options is not None or keywords:
                raise InputError("give stages= or options and keywords, not both: the stages carry their options")
            return stages
        objects = {name: keywords.pop(name) for name in built
                   if name in keywords and not isinstance(keywords[name], str)}
        return cls(RunOptions.build(options, **keywords), **objects, captions_only=captions_only, proposing=proposing)

    @cached_property
    def captioning(self) -> Captioning:
        return self._captioning(self._built["captioner"] or self.options.captioner_spec())

    def _captioning(self, captioner: str | Captioner) -> Captioning:
        # Prompt set and decoding reach only the backends that use them: the offline captioner
        # takes neither, so its behaviour (and cache) never changes with a profile.
        settings = caption_settings(self.options, captioner, llm_pool=self.llm_pool) if isinstance(captioner, str) else {}
        return Captioning(
            captioner, cache=self.cache, timings=self.timings,
            batch_size=self.options.caption_batch_size, show_progress=self.options.show_progress,
            device=self.options.device, base_url=self.options.base_url, **settings,
        )

    def captioning_for(self, spec: str) -> Captioning:
        """The run's captioning stage when ``spec`` is its captioner (loaded once), else a
        captioning stage for ``spec`` with the run's settings (for a ``caption-llm`` scorer)."""
        return self.captioning if spec == self.captioning.spec else self._captioning(spec)

    @cached_property
    def scoring(self) -> Scoring | PairScoring:
        spec = self._built["scorer"] or self.options.scorer_spec()
        backend = SCORERS.check(spec).backend if isinstance(spec, str) else None

        def takes(capability: str) -> bool:  # a built scorer takes no run options
            return backend is not None and SCORERS.has(backend, capability)

        scorer_options = {}
        if takes("pairwise"):
            scorer_options.update(prompts=self.options.prompt_set(), base_url=self.options.base_url,
                                  llm_pool=self.llm_pool, captioning_for=self.captioning_for)
        if takes("reference_mode"):
            scorer_options["reference_mode"] = self.options.ranks_as_reference
        if takes("precision"):
            scorer_options["precision"] = self.options.scorer_precision
        return create_scoring(spec, cache=self.cache, timings=self.timings, device=self.options.device,
                              settings=self.options.embed_settings(), engine=self.engine, scorer_options=scorer_options)

    @cached_property
    def proposer(self) -> Proposer:
        with self.timings.stage("load_proposer"):
            return self._built["proposer"] or build_proposer(self.options, cache=self.cache, llm_pool=self.llm_pool)

    def propose(self, set_a: ImageSet, set_b: ImageSet) -> list[str]:
        """The proposer's phrases for A over B, cleaned and de-duplicated; its rounds go to
        ``proposal_rounds``, each with ``direction``: the name of the set it describes."""
        pair_by = self.options.pair_by
        pairs = tuple(paired_positions(set_a, set_b, column=pair_by)) if pair_by else ()
        context = ProposalContext(set_a=set_a, set_b=set_b, captioning=self.captioning, scoring=self.scoring,
                                  seed=self.options.seed, show_progress=self.options.show_progress,
                                  pairs=pairs, pair_by=pair_by)
        with self.timings.stage("propose"):
            phrases = clean_hypotheses(self.proposer.propose(context))
        self.proposal_rounds += [{"direction": set_a.name, **record} for record in context.rounds]
        return phrases

    def start_unit(self) -> RunStages:
        """These stages, ready for the next unit of a sweep or benchmark (``compare(...,
        stages=stages.start_unit())``): models, engine, cache and proposer stay; the unit's
        seconds, counts (LLM tokens too), proposal rounds and kept embeddings start from nothing,
        so its results describe it alone."""
        self.timings.reset()
        self.llm_pool.usage.reset()
        self.proposal_rounds = []
        for stage in ("captioning", "scoring", "proposer"):
            built = self.__dict__.get(stage)  # built already (a cached_property)
            # Proposers that count what they do (chat requests) say so by having start_unit.
            if built is not None and hasattr(built, "start_unit"):
                built.start_unit()
        return self

    def built_models(self) -> dict:
        """The captioner and the scorer, built now, for reuse by later runs (``compare(...,
        **models)``): a benchmark loads its large models once for all its pairs."""
        return {"captioner": self.captioning.captioner, "scorer": self.scoring.scorer}

    def describe(self) -> dict:
        """Specs, settings and counts of the stages that ran (never API keys)."""
        return {
            "profile": self.options.profile,
            "options": self.options.identity(),
            "proposer": self.proposer.describe(),
            "scorer": self.scoring.spec,
            "captioner": self.captioning.spec,
            "captioner_cache_id": self.captioning.cache_id,
            "captions": asdict(self.captioning.stats),
            "embeddings": asdict(self.scoring.stats),
            "llm_usage": self.llm_usage(),
        }

    def llm_usage(self) -> dict:
        """Requests, cached answers, tokens and estimated cost of the run's LLM calls so far,
        per stage and model (:func:`visdiff.llm.usage.usage_record`)."""
        return usage_record(self.llm_pool.usage.rows(), self.prices)

