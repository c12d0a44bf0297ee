"""The CLI's run options, declared once, and the decorator that gives them to a command.

``@run_command(app, "compare", "profile", "captioner", ...)`` adds the named options (and
``--quiet``/``--verbose``/``--debug``) to the command's signature, builds one
:class:`~visdiff.options.RunOptions` from them, passes it as ``options``, and runs the command
inside the CLI's one error path (:func:`visdiff.cli.errors.cli_errors`).

Adding a run option: a field of :class:`RunOptions`, and its declaration in :data:`DECLARED`
(plus its name in the commands that take it).
"""

from __future__ import annotations

import functools
import inspect
import typing
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from visdiff.cache_root import CACHE_ENV
from visdiff.cli.errors import cli_errors, set_verbosity
from visdiff.embeddings.cache import DEFAULT_SHARD_IMAGES
from visdiff.embeddings.writer import DEFAULT_SHARD_SECONDS
from visdiff.errors import InputError, OptionValueError
from visdiff.image_sets import ImageSet
from visdiff.sources import existing_path, load_image_set
from visdiff.sources.table import check_table_options
from visdiff.llm import BASE_URL_ENV, DEFAULT_LLM_CONCURRENCY
from visdiff.llm.prices import PRICES_AS_OF
from visdiff.options import NOT_EMPTY, RunOptions
from visdiff.profiles import PROFILES
from visdiff.progress import progress_enabled
from visdiff.ranking import DEFAULT_ALPHA, DEFAULT_MERGE_THRESHOLD
from visdiff.tables import DEFAULT_GROUP_COLUMN, is_table, parse_where, require_groups

if TYPE_CHECKING:  # torch: imported by the command once the sets are to be compared
    from visdiff.stages import RunStages

MODELS = "Models"
LLM = "LLM proposer"
GENERATION = "Prompts and generation"
CACHE = "Cache"
OUTPUT = "Output"

ProfileName = Enum("ProfileName", {name: name for name in PROFILES}, type=str)


@dataclass(frozen=True)
class Declared:
    """One CLI option: its type with the typer declaration, and its default."""

    annotation: Any
    default: Any = None


DECLARED: dict[str, Declared] = {
    "profile": Declared(Annotated[ProfileName | None, typer.Option(
        "--profile", "-p", help="Bundle of models: offline (default, no downloads), laptop (CPU + API LLM), paper.",
        rich_help_panel=MODELS, case_sensitive=False)]),
    "captioner": Declared(Annotated[str | None, typer.Option(
        "--captioner", help="Captioner spec, e.g. 'blip2:Salesforce/blip2-flan-t5-xxl', 'llava:llava-hf/llava-1.5-7b-hf', "
        "'hf:Salesforce/blip-image-captioning-base', 'openai:gpt-4o'.", rich_help_panel=MODELS)]),
    "proposer": Declared(Annotated[str | None, typer.Option(
        "--proposer", help="Proposer spec: 'llm:MODEL' (captions -> LLM), 'vlm:MODEL' (image grid -> vision LLM), "
        "'vocabulary'.", rich_help_panel=MODELS)]),
    "scorer": Declared(Annotated[str | None, typer.Option(
        "--scorer", "-s", help="Scorer spec, e.g. 'open_clip:ViT-bigG-14:laion2b_s39b_b160k' (the paper's), 'vqa:MODEL', 'vqa:openai:MODEL', 'caption-llm:CAPTIONER,LLM' or "
        "'open_clip:ViT-B-32:/path/weights.pt'.", rich_help_panel=MODELS)]),
    "clip": Declared(Annotated[str | None, typer.Option(
        "--clip", help="Shorthand for --scorer open_clip:ARCH:PRETRAINED.", rich_help_panel=MODELS)]),
    "device": Declared(Annotated[str | None, typer.Option(
        help="cuda, mps or cpu (default: best available).", rich_help_panel=MODELS)]),
    "precision": Declared(Annotated[str | None, typer.Option(
        "--precision", help="The scorer's arithmetic: auto (fp16 on a GPU, fp32 on a CPU), fp32, fp16 or bf16 "
        "(default: the profile's: fp32 under --profile paper).", rich_help_panel=MODELS)]),
    "full_decode": Declared(Annotated[bool | None, typer.Option(
        "--full-decode/--draft-decode", help="Decode JPEGs at full scale before resizing, or at the reduced scale "
        "that still covers the model's input (faster; default: the profile's: full under --profile paper).",
        show_default=False, rich_help_panel=MODELS)]),
    "ranker_mode": Declared(Annotated[str | None, typer.Option(
        "--ranker-mode", help="How the vqa and caption-llm scorers ask: visdiff (vqa: P(yes) from the logits; "
        "caption-llm: 20 statements a request) or reference (a sampled answer, yes in it = 1; one caption and "
        "concept a request, with examples; default: the profile's: reference under --profile paper).",
        rich_help_panel=MODELS)]),
    "batch_size": Declared(Annotated[int, typer.Option(
        help="Images per forward pass of the scorer.", rich_help_panel=MODELS)], 64),
    "engine": Declared(Annotated[str, typer.Option(
        help="Where images missing from the cache are embedded: local (this process) or ray (Ray Data; "
        "pip install 'visdiff[ray]').", rich_help_panel=MODELS)], "local"),
    "engine_address": Declared(Annotated[str | None, typer.Option(
        "--address", help="Ray cluster to run --engine ray on (e.g. ray://head:10001 or 'auto'); default: a new "
        "local Ray.", rich_help_panel=MODELS)]),
    "shard_images": Declared(Annotated[int, typer.Option(
        help="Commit fresh embeddings to the cache every N images (a killed run loses less than one shard).",
        rich_help_panel=CACHE)], DEFAULT_SHARD_IMAGES),
    "shard_seconds": Declared(Annotated[float, typer.Option(
        help="... or every this many seconds, whichever comes first.", rich_help_panel=CACHE)],
        DEFAULT_SHARD_SECONDS),
    "llm": Declared(Annotated[str | None, typer.Option(
        "--llm", help="Chat model for the proposer (any OpenAI-compatible name); key from $OPENAI_API_KEY.",
        rich_help_panel=LLM)]),
    "base_url": Declared(Annotated[str | None, typer.Option(
        "--base-url", envvar=BASE_URL_ENV, show_envvar=True,
        help="OpenAI-compatible endpoint, e.g. http://localhost:8000/v1 (vLLM, Ollama, llama.cpp).",
        rich_help_panel=LLM)]),
    "rounds": Declared(Annotated[int, typer.Option(
        help="Proposal rounds (one LLM call each).", rich_help_panel=LLM)], 3),
    "samples_per_set": Declared(Annotated[int, typer.Option(
        "--samples", help="Images sampled from each set per round.", rich_help_panel=LLM)], 20),
    "hypotheses": Declared(Annotated[int, typer.Option(
        "--hypotheses", help="Hypotheses asked of the LLM per round (the paper's: 10).", rich_help_panel=LLM)], 10),
    "seed": Declared(Annotated[int, typer.Option(
        help="Seed for the sampling of images and the LLM.", rich_help_panel=LLM)], 0),
    "both_directions": Declared(Annotated[bool, typer.Option(
        "--both-directions", help="Also propose and rank what is more true of B than of A.", rich_help_panel=LLM)],
        False),
    "pair_by": Declared(Annotated[str | None, typer.Option(
        "--pair-by", help="Table column pairing A and B images (e.g. the generation prompt): the llm proposer sees "
        "each sampled pair's captions side by side; statistics stay over the whole sets.", rich_help_panel=LLM)]),
    "refine": Declared(Annotated[int, typer.Option(
        "--refine", help="After ranking, up to N rounds asking the LLM for sharper or missing hypotheses, "
        "shown the best ones and the images they miss; stops when the best AUROC stops improving.",
        rich_help_panel=LLM)], 0),
    "llm_concurrency": Declared(Annotated[int, typer.Option(
        "--llm-concurrency", help="LLM requests in flight at a time, shared by captioner, proposer, scorer and judge "
        "(answers are the same as one at a time).", rich_help_panel=LLM)], DEFAULT_LLM_CONCURRENCY),
    "prices": Declared(Annotated[list[str] | None, typer.Option(
        "--price", help="Price of a model for the cost estimate: MODEL=IN/OUT in USD per million input/output tokens "
        f"(repeatable; replaces the built-in list prices of {PRICES_AS_OF}).", rich_help_panel=LLM,
        metavar="MODEL=IN/OUT", show_default=False)]),
    "prompts": Declared(Annotated[str | None, typer.Option(
        "--prompts", help="Prompt set of proposer, captioner and judge: 'strict' (CLIP-friendly), 'paper' (the "
        "reference's semantics) or a folder of .txt templates (default: the profile's).", rich_help_panel=GENERATION)]),
    "temperature": Declared(Annotated[str | None, typer.Option(
        "--temperature", help="LLM sampling temperature, or 'default' to send none (default: the profile's: 0.7; "
        "paper: none).", rich_help_panel=GENERATION)]),
    "max_tokens": Declared(Annotated[str | None, typer.Option(
        "--max-tokens", help="Longest LLM answer in tokens, or 'default' to send none (default: the profile's: 512; "
        "paper: none).", rich_help_panel=GENERATION)]),
    "system_message": Declared(Annotated[str | None, typer.Option(
        "--system-message", help="System message of the LLM requests; '' for none (default: the prompt set's "
        "system.txt, if any).", rich_help_panel=GENERATION)]),
    "llm_seed": Declared(Annotated[bool | None, typer.Option(
        "--llm-seed/--no-llm-seed", help="Send a seed with each LLM request (default: the profile's; paper: no).",
        rich_help_panel=GENERATION, show_default=False)]),
    "caption_beams": Declared(Annotated[int | None, typer.Option(
        "--caption-beams", help="Beam search width of local captioners (default: the profile's; paper: 5 for "
        "BLIP-2).", rich_help_panel=GENERATION)]),
    "caption_max_tokens": Declared(Annotated[int | None, typer.Option(
        "--caption-max-tokens", help="Longest caption in new tokens (default: the profile's; paper: 30 for "
        "BLIP-2; else the captioner's).", rich_help_panel=GENERATION)]),
    "caption_temperature": Declared(Annotated[float | None, typer.Option(
        "--caption-temperature", help="Caption sampling temperature, 0 = none (default: the profile's; "
        "paper: 0.2 for LLaVA).", rich_help_panel=GENERATION)]),
    "alpha": Declared(Annotated[float, typer.Option(
        help="False-discovery rate for the significance flag.")], DEFAULT_ALPHA),
    "purity": Declared(Annotated[float, typer.Option(
        "--purity", help="Trade a fraction 1-p of set A for random images of set B before comparing "
        "(paper Fig. 4): how a difference fades as the sets mix.")], 1.0),
    "holdout": Declared(Annotated[float, typer.Option(
        "--holdout", help="Hold this fraction of each set out of the proposer (e.g. 0.5): AUROC, p and q come "
        "from the held-out images only, the proposal split's beside them.")], 0.0),
    "rare": Declared(Annotated[float | None, typer.Option(
        "--rare", help="Look for a difference shown by few images of A (about this fraction or less, in (0, 0.5], "
        "e.g. 0.05): the proposer is shown the A images least like B, and rows are ranked by the share of A above "
        "B's top 1% (exact test) instead of AUROC.")]),
    "goal": Declared(Annotated[str | None, typer.Option(
        "--goal", help="The question behind the comparison ('why does the classifier fail on A'), put into every "
        "proposer and refinement request.")]),
    "merge": Declared(Annotated[bool | None, typer.Option(
        "--merge/--no-merge", help="Merge near-duplicate proposals into the best-ranked wording, listing the "
        "others as its variants (default: the profile's: on, off under --profile paper).",
        show_default=False)], None),
    "merge_threshold": Declared(Annotated[float, typer.Option(
        "--merge-threshold", help="Cosine similarity of the scorer's text embeddings at which two proposals "
        "merge.")], DEFAULT_MERGE_THRESHOLD),
    # Text, not a Path: typer makes '' the path '.', and RunOptions refuses '' only as text.
    "cache_dir": Declared(Annotated[str | None, typer.Option(
        "--cache-dir", envvar=CACHE_ENV, help="Cache folder (default: the user cache dir).",
        rich_help_panel=CACHE)]),
    "no_cache": Declared(Annotated[bool, typer.Option(
        "--no-cache", help="Neither read nor write the cache; write nothing to disk but the outputs.",
        rich_help_panel=CACHE)], False),
}
# Every command takes these; they shape the output, not the run.
OUTPUT_OPTIONS: dict[str, Declared] = {
    "quiet": Declared(Annotated[bool, typer.Option(
        "--quiet", "-q", help="No progress bars or warnings, only results and errors.", rich_help_panel=OUTPUT)], False),
    "verbose": Declared(Annotated[bool, typer.Option(
        "--verbose", "-v", help="Log each step.", rich_help_panel=OUTPUT)], False),
    "debug": Declared(Annotated[bool, typer.Option(
        "--debug", help="Show the full traceback of an error.", rich_help_panel=OUTPUT)], False),
}
# compare, bench and sweep: where the finished run is also recorded (visdiff.trackers); not a
# RunOptions field, as it never changes results.
LogToOption = Annotated[list[str] | None, typer.Option(
    "--log-to", help="Also log the run (settings, ranked table, metrics, report files) to an experiment tracker: "
    "wandb or mlflow (repeatable or comma-separated; configured by WANDB_* / MLFLOW_* variables; "
    "pip install 'visdiff[wandb]' or 'visdiff[mlflow]').", rich_help_panel=OUTPUT, metavar="wandb|mlflow",
    show_default=False)]
# Declared names that are not RunOptions fields, and how they become one.
_CLI_ONLY = {"clip", "no_cache"}
# The click context typer passes each command (by this parameter's annotation): its command path.
CONTEXT = "_click_context"


def run_options(values: dict, *, quiet: bool, command: str) -> RunOptions:
    """A RunOptions from the declared CLI values of ``command`` (its path: ``visdiff rank``;
    ``--clip`` -> scorer, ``--no-cache`` -> use_cache)."""
    fields = {name: value for name, value in values.items() if name not in _CLI_ONLY}
    if isinstance(fields.get("profile"), Enum):
        fields["profile"] = fields["profile"].value
    if fields.get("profile") is None:
        fields.pop("profile", None)
    if values.get("clip"):
        fields["scorer"] = f"open_clip:{values['clip']}"
    if "no_cache" in values:
        fields["use_cache"] = not values["no_cache"]
    try:
        return RunOptions.build(show_progress=progress_enabled(quiet), **fields)
    except OptionValueError as e:  # said as typer says a bad value: by its flag, with the help to see
        raise InputError(f"invalid value for {flag_of(e.option)!r}: must be {e.requirement}, "
                         f"got {e.value!r} (see '{command} --help')") from None


def flag_of(name: str) -> str:
    """The command-line flag of run option ``name`` (``samples_per_set`` -> ``--samples``)."""
    declaration = DECLARED[name].annotation.__metadata__[0] if name in DECLARED else None
    # In an Annotated typer.Option the first flag is kept as its ``default``.
    names = [getattr(declaration, "default", None), *getattr(declaration, "param_decls", ())]
    flags = [decl for decl in names if isinstance(decl, str) and decl.startswith("--")]
    return flags[0] if flags else f"--{name.replace('_', '-')}"


def run_command(app: typer.Typer, name: str, *declared: str, inputs: bool = False, many_sets: bool = False):
    """Register ``func`` as command ``name`` with the ``declared`` run options (see module doc).

    ``func`` takes ``options: RunOptions`` plus its own parameters; a parameter named like a
    shared option (``quiet``...) receives that option's raw value. With ``inputs``, the
    command takes sets A and B (arguments, group and filter options) and ``func`` gets them as
    ``inputs: SetInputs``; with ``many_sets`` too, it also takes more sets (further arguments,
    or ``--group`` once per set of one table).
    """
    def decorate(func):
        hints = typing.get_type_hints(func, include_extras=True)
        shared = {**{n: DECLARED[n] for n in declared}, **OUTPUT_OPTIONS}
        given = {**INPUT_OPTIONS, **(MANY_SET_OPTIONS if many_sets else {})} if inputs else {}
        own = [p.replace(annotation=hints.get(p.name, p.annotation))
               for p in inspect.signature(func).parameters.values() if p.name not in ("options", "inputs", *shared)]
        own_names = {p.name for p in inspect.signature(func).parameters.values()} - {"options", "inputs"}
        parameters = [
            inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=d.annotation, default=d.default)
            for n, d in given.items()
        ] + own + [
            inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, annotation=d.annotation, default=d.default)
            for n, d in shared.items()
        ] + [inspect.Parameter(CONTEXT, inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context)]

        @functools.wraps(func)
        def command(**values):
            quiet, verbose, debug = (values.get(n, False) for n in OUTPUT_OPTIONS)
            set_verbosity(quiet, verbose)
            with cli_errors(debug=debug):
                # The whole path ("visdiff cache info"), for the help a usage error points to.
                options = run_options({n: values[n] for n in declared}, quiet=quiet,
                                      command=values.pop(CONTEXT).command_path)
                extra = {"inputs": SetInputs(**{n: values[n] for n in given})} if inputs else {}
                return func(options=options, **extra, **{n: v for n, v in values.items() if n in own_names})

        del command.__wrapped__  # typer must read the new signature, not the function's own
        command.__signature__ = inspect.Signature(parameters)
        command.__annotations__ = {p.name: p.annotation for p in parameters}
        return app.command(name)(command)

    return decorate


# --- image sets: the same input options on every command that takes sets --------------------

INPUT = "Input"
SetArgument = Annotated[Path, typer.Argument(
    help="A folder of images, a table (CSV, Parquet, datasets folder) of image paths or bytes, or WebDataset "
    "tar shards (one .tar, or a quoted brace pattern 'shards-{000..009}.tar').")]
SetBArgument = Annotated[Path | None, typer.Argument(
    help="Set B, as set A; leave out when --group-b picks set B from set A's table.", show_default=False)]
GroupAOption = Annotated[str | None, typer.Option(
    "--group-a", help="Value of the group column that set A takes from a table.", rich_help_panel=INPUT)]
GroupBOption = Annotated[str | None, typer.Option(
    "--group-b", help="Value of the group column that set B takes (from set B's table, or set A's).",
    rich_help_panel=INPUT)]
GroupColumnOption = Annotated[str, typer.Option(
    "--group-col", help="The tables' group column.", rich_help_panel=INPUT)]
WhereOption = Annotated[list[str] | None, typer.Option(
    "--where", help="Keep only table rows with COLUMN=VALUE (repeatable).", rich_help_panel=INPUT)]
MoreSetsArgument = Annotated[list[Path] | None, typer.Argument(
    help="More sets: with three or more, each set is described against all the others.", show_default=False)]
GroupOption = Annotated[list[str] | None, typer.Option(
    "--group", help="Value of the group column giving one set of the one table given (repeat once per set; "
    "with three or more, each set is described against all the others).", rich_help_panel=INPUT)]
NameAOption = Annotated[str | None, typer.Option(
    "--name-a", help="What to call set A in titles, the report and results (default: its folder's name, or its "
    "table with the group and --where filters).", rich_help_panel=INPUT, show_default=False)]
NameBOption = Annotated[str | None, typer.Option(
    "--name-b", help="What to call set B, as --name-a.", rich_help_panel=INPUT, show_default=False)]


def set_name(source: Path, group: str | None, group_column: str, where: dict[str, str], *,
             as_given: bool = False) -> str:
    """What a set given on the command line is called in titles, reports and results: its
    folder's name (``data/dogs`` -> ``dogs``), or its table's file name with the group and row
    filters that chose it (``t.csv: source=v2 (label=bird)``). ``as_given``: the path as typed,
    not its last part (two folders of one name are told apart so)."""
    shown = str(source) if as_given else (source.resolve().name or str(source))
    if not is_table(source):
        return shown
    selection = f": {group_column}={group}" if group is not None else ""
    filters = ", ".join(f"{column}={value}" for column, value in where.items())
    return f"{shown}{selection}" + (f" ({filters})" if filters else "")


@dataclass(frozen=True)
class SetInputs:
    """Where sets A and B come from, as given on the command line; loaded by :meth:`load`."""

    set_a: Path
    set_b: Path | None
    group_a: str | None
    group_b: str | None
    group_col: str
    where: list[str] | None
    more_sets: list[Path] | None = None
    groups: list[str] | None = None
    name_a: str | None = None
    name_b: str | None = None

    @property
    def title(self) -> str:
        """``A = dogs  vs  B = birds`` for table titles."""
        name_a, name_b = self.names()[:2]
        return f"A = {name_a}  vs  B = {name_b}"

    def names(self) -> list[str]:
        """What each set is called: ``--name-a``/``--name-b``, else :func:`set_name` of its
        source (the paths as given when both would read the same); with more than two sets,
        each set's group value, else its path as given."""
        for field, given in (("name_a", self.name_a), ("name_b", self.name_b)):
            if given is not None and not given.strip():  # "" would fall back to the folder's name unsaid
                raise InputError(f"invalid value for {flag_of(field)!r}: must be {NOT_EMPTY[field]}, got {given!r}")
        sources = self.sources()
        if len(sources) > 2:
            if self.name_a or self.name_b:
                raise InputError("--name-a/--name-b name two sets; with more, each set is named by its --group value "
                                 "or path")
            return [group or str(source) for source, group in sources]
        filters = parse_where(self.where)
        found = [set_name(source, group, self.group_col, filters) for source, group in sources]
        if found[0] == found[1]:
            found = [set_name(source, group, self.group_col, filters, as_given=True) for source, group in sources]
        names = [self.name_a or found[0], self.name_b or found[1]]
        if names[0] == names[1] and (self.name_a or self.name_b):
            raise InputError(f"sets A and B are both called {names[0]!r}: give them different names (--name-a, --name-b)")
        return names

    def sources(self) -> list[tuple[Path, str | None]]:
        """(source, group) of every set given: A and B, then any more sets; or one per ``--group``."""
        if self.groups:
            if self.group_a or self.group_b:
                raise InputError("--group picks every set; use it instead of --group-a/--group-b, not with them")
            if self.set_b is not None or self.more_sets:
                raise InputError("--group picks the sets from one table: give that table alone")
            if len(self.groups) < 2:
                raise InputError(f"--group {self.groups[0]!r} gives one set; give --group once per set, at least twice")
            return [(self.set_a, group) for group in self.groups]
        if self.set_b is None and self.group_b is None:
            raise InputError("give set B, or --group-b to take set B from set A's table")
        if self.more_sets and (self.group_a or self.group_b):
            raise InputError("--group-a/--group-b pick two sets; for more sets of one table give --group once per set")
        return [(self.set_a, self.group_a), (self.set_b or self.set_a, self.group_b),
                *((source, None) for source in self.more_sets or ())]

    def load(self, options: RunOptions, *, proposing: bool = False,
             dry_run: bool = False) -> tuple[list[ImageSet], RunStages]:
        """Every set given (A and B: one table may give both, ``--group-b`` alone; then any
        more), named by :meth:`names`, and the run's stages, built once here: they check the
        specs (the scorer's model too; the proposer when ``proposing``) and the cache folder
        before any file is read, hash files through the cache's memo (not in a ``dry_run``: it
        writes nothing), and then run the command."""
        sources = self.sources()
        for source, _ in sources:
            existing_path(source)  # a mistyped folder says so at once, before torch is loaded
        filters = parse_where(self.where)
        if self.groups:  # every value checked before any image is read
            check_table_options(self.set_a, group=self.groups[0])
            require_groups(self.set_a, self.groups, group_column=self.group_col, where=filters)
        from visdiff.multi import set_names  # torch: only once sets are to be compared
        from visdiff.stages import RunStages

        names = self.names()
        set_names(sources, names)  # distinct (--group music --group music), before any model or image
        # Specs, --cache-dir and the proposer (its API key) fail before any file is read.
        stages = RunStages(options, proposing=proposing)
        hashes = None if dry_run else stages.cache.file_hashes()
        sets = [load_image_set(source, group=group, group_column=self.group_col, where=filters, name=name,
                               hashes=hashes, pair_by=options.pair_by)
                for (source, group), name in zip(sources, names)]
        return sets, stages


INPUT_OPTIONS: dict[str, Declared] = {
    "set_a": Declared(SetArgument, inspect.Parameter.empty),
    "set_b": Declared(SetBArgument),
    "group_a": Declared(GroupAOption),
    "group_b": Declared(GroupBOption),
    "group_col": Declared(GroupColumnOption, DEFAULT_GROUP_COLUMN),
    "where": Declared(WhereOption),
    "name_a": Declared(NameAOption),
    "name_b": Declared(NameBOption),
}
MANY_SET_OPTIONS: dict[str, Declared] = {
    "more_sets": Declared(MoreSetsArgument),
    "groups": Declared(GroupOption),
}
