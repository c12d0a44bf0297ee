"""The two ways ``visdiff serve`` gets its comparison: a new run (compare, then serve), or a
finished run reopened from its ``results.json`` (``--results DIR``) without proposing again
or embedding the images again: their embeddings come from the cache.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, fields
from pathlib import Path

from visdiff.cli.options import flag_of
from visdiff.comparison import Comparison
from visdiff.errors import InputError
from visdiff.image_sets import ImageSet
from visdiff.options import LLM_REQUEST_OPTIONS, SAMPLING_OPTIONS, RunOptions
from visdiff.report.results import SCHEMA_VERSION, grouped_settings, provenance
from visdiff.result import ranked_table
from visdiff.serve.served import ServedComparison
from visdiff.stages import RunStages

log = logging.getLogger(__name__)

# The options of proposing and captioning: a reopened run takes them from the command line
# (none given: no proposer, so the page cannot start an LLM), all others from its results.json.
PROPOSING_OPTIONS = frozenset({
    "captioner", "proposer", "llm", "base_url", *SAMPLING_OPTIONS, *LLM_REQUEST_OPTIONS,
    "caption_beams", "caption_max_tokens", "caption_temperature",
})


def _sets_record(set_a: ImageSet, set_b: ImageSet) -> dict:
    return {side: {"name": s.name, "n_images": len(s), "skipped": len(s.skipped)}
            for side, s in (("a", set_a), ("b", set_b))}


def serve_new_run(stages: RunStages, set_a: ImageSet, set_b: ImageSet) -> ServedComparison:
    """Compare the sets as ``visdiff compare`` does, then keep the comparison to serve."""
    comparison = Comparison.of_stages(stages, set_a, set_b)
    result = comparison.compare()
    record = {**provenance(), "settings": grouped_settings(result.config, result.table.attrs),
              "sets": _sets_record(comparison.set_a, comparison.set_b)}
    return ServedComparison(comparison, ranked_table(result.table).to_dict("records"), record, can_propose=True)


@dataclass(frozen=True)
class FinishedRun:
    """What ``results.json`` of a two-set run says that serving it needs."""

    path: Path
    document: dict

    @classmethod
    def read(cls, folder: Path) -> FinishedRun:
        """The run in ``folder`` (its ``results.json``), checked before any image is read."""
        path = Path(folder) / "results.json"
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError(f"--results {folder}: no results.json there (write one with visdiff compare --out)") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise InputError(f"--results {folder}: cannot read {path}: {e}") from None
        if not isinstance(document, dict) or document.get("schema_version") != SCHEMA_VERSION:
            raise InputError(f"--results {folder}: {path} is not a visdiff results.json of schema version "
                             f"{SCHEMA_VERSION}")
        if "comparisons" in document:
            raise InputError(f"--results {folder}: {path} holds several sets' comparisons; serve opens a run of two sets")
        if not isinstance(document.get("config", {}).get("options"), dict) or "sets" not in document:
            raise InputError(f"--results {folder}: {path} records no run options or sets")
        return cls(path, document)

    @property
    def recorded_options(self) -> dict:
        return self.document["config"]["options"]

    def options(self, given: RunOptions) -> RunOptions:
        """The run's recorded options, with the proposing options (:data:`PROPOSING_OPTIONS`)
        and how to run (device, cache...) from ``given``; a ``given`` setting that would change
        the ranking and differs from the run's is refused, naming it."""
        defaults, recorded = RunOptions(), {**self.recorded_options, "scorer": self.document["config"].get("scorer")}
        for name, value in given.identity().items():
            if name not in PROPOSING_OPTIONS and value not in (getattr(defaults, name), recorded.get(name)):
                raise InputError(f"{flag_of(name)} {value!r}: --results takes the run's settings from {self.path} "
                                 f"(its {name}: {recorded.get(name)!r}); leave the option out")
        names = {f.name for f in fields(RunOptions)}
        taken = {name: value for name, value in recorded.items() if name in names and name not in PROPOSING_OPTIONS}
        own = {f.name: getattr(given, f.name) for f in fields(RunOptions)
               if f.name in PROPOSING_OPTIONS or f.metadata.get("runtime")}
        return RunOptions.build(**{**taken, **own})

    def serve(self, stages: RunStages, set_a: ImageSet, set_b: ImageSet, *, can_propose: bool) -> ServedComparison:
        """The comparison of the sets, which must hold the run's images, embedded from the cache,
        served with the run's rows and provenance."""
        comparison = Comparison.of_stages(stages, set_a, set_b)
        for side, image_set in (("a", comparison.set_a), ("b", comparison.set_b)):
            recorded = sorted(image["key"] for image in self.document["sets"][side]["images"])
            if sorted(image_set.keys) != recorded:
                raise InputError(f"set {side.upper()} ({image_set.name}) does not hold the images of the run in "
                                 f"{self.path} ({len(image_set)} images here, {len(recorded)} there)")
        encoded = stages.scoring.stats.encoded
        if encoded:
            log.warning("%d images were not in the cache and were embedded again", encoded)
        header = ("created_at", "command_line", "visdiff_version", "versions", "settings")
        record = {"opened_from": str(self.path), **{name: self.document.get(name) for name in header},
                  "sets": _sets_record(comparison.set_a, comparison.set_b)}
        captions = {key: caption for side in ("a", "b") for key, caption in self.document.get("captions", {}).get(side, {}).items()}
        return ServedComparison(comparison, self.document.get("results", []), record, can_propose=can_propose,
                                captions=captions)
