"""More than two image sets: each set described against the union of the others.

:func:`visdiff.compare_many` ``([s1, s2, s3])`` (``visdiff compare S1 S2 S3``) runs one comparison per set,
A = that set, B = every image of the other sets. All sets are embedded in one pass
(:meth:`~visdiff.embeddings.scoring.Scoring.embed_sets`: an image is decoded and encoded once
however many sets hold it) and each comparison scores from those embeddings.

The proposer reads the set against a *contrast*: the same number of images from each other
set (as many as the smallest of them holds; a seeded sample of the larger ones), so that one
large set does not fill what the proposer sees of the others. The statistics compare the set
with the whole union.

An image in several sets (same content hash) stays in each, with one warning per pair of
sets: in the comparison of one of them it counts in A and in B.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np

from visdiff.comparison import Comparison
from visdiff.errors import InputError
from visdiff.image_sets import ImageSet, warn_shared_images
from visdiff.sources import load_image_set
from visdiff.options import RunOptions
from visdiff.result import CompareResult, MultiCompareResult
from visdiff.stages import RunStages

log = logging.getLogger(__name__)


def check_options(options: RunOptions) -> None:
    """Options that mean nothing with several sets are usage errors, not silently ignored."""
    if options.both_directions:
        raise InputError("--both-directions (both_directions=True) compares two sets; with several, each set is "
                         "already described against the others")
    if options.pair_by:
        raise InputError(f"--pair-by {options.pair_by!r} (pair_by=) pairs the images of two sets; with several, "
                         "each set is compared with the union of the others, which has no partners to pair")
    if options.holdout:
        raise InputError("--holdout (holdout=) splits two sets; with several sets it is not supported (the proposer "
                         "reads a balanced sample of the others)")


def set_names(image_sets: Sequence, names: Sequence[str] | None) -> list[str]:
    """``names`` if given (one per set), else each :class:`ImageSet`'s own name (folder or
    group), else ``set N``; unique."""
    if names is not None:
        names = [str(n) for n in names]
        if len(names) != len(image_sets):
            raise InputError(f"{len(names)} names for {len(image_sets)} image sets")
    else:
        names = [s.name or f"set {i}" for i, s in enumerate(image_sets, start=1)]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise InputError(f"image sets need distinct names; {', '.join(map(repr, repeated))} is given more than once")
    return names


def union_of(image_sets: Sequence[ImageSet], name: str) -> ImageSet:
    """Every image of ``image_sets`` in order (an image in two of them appears twice), with their skipped inputs."""
    return ImageSet(items=tuple(item for s in image_sets for item in s.items),
                    skipped=tuple(skip for s in image_sets for skip in s.skipped), name=name)


def balanced_contrast(image_sets: Sequence[ImageSet], name: str, rng: np.random.Generator) -> ImageSet:
    """As many images of each set as the smallest holds: a set of that size whole, the others
    a sample drawn by ``rng`` (kept in set order)."""
    per_set = min(len(s) for s in image_sets)
    items = []
    for image_set in image_sets:
        positions = range(len(image_set)) if len(image_set) == per_set else \
            sorted(rng.choice(len(image_set), per_set, replace=False).tolist())
        items += [image_set.items[i] for i in positions]
    return ImageSet(items=tuple(items), name=name)


def others_of(image_sets: Sequence[ImageSet], seed: int) -> tuple[list[ImageSet], list[ImageSet]]:
    """Per set, the union of the others (its set B) and the balanced contrast of them that the
    proposer reads (drawn from ``seed`` and the set's position)."""
    rests, contrasts = [], []
    for i in range(len(image_sets)):
        others = [*image_sets[:i], *image_sets[i + 1:]]
        rest_name = " + ".join(s.name for s in others)
        rests.append(union_of(others, rest_name))
        contrasts.append(balanced_contrast(others, rest_name, np.random.default_rng((seed, i))))
    return rests, contrasts


class MultiComparison:
    """Several image sets, each compared with the union of the others, sharing one embedding pass.

    Parameters
    ----------
    sets : sequence of image sets, or mapping name -> image set
        At least two; anything :func:`visdiff.load_image_set` takes, at least 2 readable images each.
    options, **keywords
        Run options as for :func:`visdiff.compare` (``both_directions`` is refused: every set is
        already described against the others).
    names : sequence of str, optional
        Labels of the sets (default: the mapping's keys, each set's folder or group name, or
        ``set N``); they must differ.

    :attr:`comparisons` maps each name to its :class:`~visdiff.comparison.Comparison` (A = the
    set, B = the others), ready for ``rank``, ``images`` and ``propose`` as usual. Each keeps
    its own union of the others resident, so k sets hold about k times the embeddings of all
    their images (encoded once).
    """

    def __init__(self, sets, options: RunOptions | None = None, *, names: Sequence[str] | None = None,
                 stages: RunStages | None = None, **keywords) -> None:
        if isinstance(sets, Mapping):
            if names is not None:
                raise InputError("give names= or a mapping of names to sets, not both")
            names, sets = list(sets), list(sets.values())
        sets = list(sets)
        if len(sets) < 2:
            raise InputError(f"comparing sets with each other needs at least 2 image sets, got {len(sets)}")
        self.stages = RunStages.from_keywords(options, keywords, stages=stages, proposing=True)
        check_options(self.options)
        timings = self.stages.timings
        if names is not None:
            set_names(sets, names)  # checked before any image is read
        with timings.stage("load_images"):
            hashes = self.stages.cache.file_hashes()
            loaded = [load_image_set(source, hashes=hashes) for source in sets]
            names = set_names(loaded, names)
            loaded = [replace(s, name=n).require(2) for s, n in zip(loaded, names)]
            for image_set in loaded:
                image_set.warn_of_repeats()
            self.shared_images = warn_shared_images(loaded)
        rests, contrasts = others_of(loaded, self.options.seed)
        # One pass for the sets, their unions and contrasts: each image is embedded once, and
        # every set the comparisons and the proposer score is then known to the scoring stage.
        embedded = self.stages.scoring.embed_sets(*loaded, *rests, *contrasts)
        n = len(loaded)
        # What the proposer reads of the others, per set.
        self.contrasts: dict[str, ImageSet] = {name: embedded[2 * n + i][1] for i, name in enumerate(names)}
        self.comparisons: dict[str, Comparison] = {
            name: Comparison.of_embedded(self.stages, embedded[i], embedded[n + i], contrast=self.contrasts[name])
            for i, name in enumerate(names)
        }

    @property
    def options(self) -> RunOptions:
        return self.stages.options

    @property
    def names(self) -> list[str]:
        return list(self.comparisons)

    def compare(self) -> MultiCompareResult:
        """Each set's :meth:`Comparison.compare` against the others. Each result's ``timings``
        and ``proposal_rounds`` are those of its own comparison; the whole run's are on the
        returned :class:`~visdiff.result.MultiCompareResult`."""
        timings = self.stages.timings
        results: dict[str, CompareResult] = {}
        for name, comparison in self.comparisons.items():
            before = timings.as_dict()
            result = comparison.compare()
            spent = {stage: seconds - before.get(stage, 0.0) for stage, seconds in timings.as_dict().items()
                     if seconds != before.get(stage, 0.0)}
            results[name] = replace(
                result,
                config={**result.config, "set": name, "against": [n for n in self.names if n != name],
                        "contrast_images": len(self.contrasts[name])},
                timings={**spent, "total": sum(spent.values())},
            )
        config = {
            **self.stages.describe(),
            "sets": {name: {"n_images": len(c.set_a), "n_skipped": len(c.set_a.skipped)}
                     for name, c in self.comparisons.items()},
            "shared_images": self.shared_images,
        }
        run_timings = timings.as_dict()
        return MultiCompareResult(results=results, config=config,
                                  timings={**run_timings, "total": sum(run_timings.values())})

    def __repr__(self) -> str:
        sizes = ", ".join(f"{name}: {len(c.set_a)}" for name, c in self.comparisons.items())
        return f"MultiComparison({sizes} images; scorer {self.stages.scoring.spec!r})"

