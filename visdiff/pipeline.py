"""The public API of the VisDiff pipeline: ``caption``, ``propose``, ``rank``, ``compare``, ``compare_many`` and ``embed``.

Each takes a :class:`~visdiff.options.RunOptions` (``options=``) and/or its fields as keywords
(``profile="paper"``, ``seed=3``...); ``captioner``, ``proposer`` and ``scorer`` may also be
built objects, used as they are (so a benchmark loads its models once for many pairs).
:class:`~visdiff.stages.RunStages` turns the options into stages.

``compare_many`` describes each of several sets against the union of the others
(:mod:`visdiff.multi`).

``rank`` and ``compare`` are one call on a fresh :class:`~visdiff.comparison.Comparison`, the
object to keep for interactive use. ``stages=`` hands them stages built already, in place of
options (the CLI checks its specs on them before reading a set, then runs on them). Captions,
LLM answers and embeddings are cached by content, so when a late stage fails, a rerun redoes
nothing that finished.

With ``both_directions`` the proposer is asked twice, once with the sets swapped, so any
proposer can describe B as opposed to A; see :func:`visdiff.ranking.rank_directions` for the
table that gives.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict

import pandas as pd

from visdiff.comparison import Comparison, holdout_split, load_sets
from visdiff.sources import load_image_set
from visdiff.multi import MultiComparison
from visdiff.options import RunOptions
from visdiff.ranking import clean_hypotheses
from visdiff.result import CompareResult, MultiCompareResult, RankedTable
from visdiff.stages import RunStages
from visdiff.errors import InputError
from visdiff.value_comparison import ValueComparison
from visdiff.value_result import ValueResult


def caption(images, options: RunOptions | None = None, **keywords) -> pd.DataFrame:
    """Caption every image of a set.

    Parameters
    ----------
    images : folder, CSV, list of paths or PIL images, or ImageSet
        Anything :func:`visdiff.load_image_set` takes.
    options, **keywords
        Run options; ``captioner`` (a spec or a built captioner, default the profile's),
        ``caption_batch_size``, ``device``, ``base_url``, ``cache_dir``, ``use_cache``...

    Returns
    -------
    pandas.DataFrame
        Columns ``source, sha256, caption``, one row per readable image, in set order.
        ``attrs`` holds the captioner spec, the skipped inputs and the counts
        (captioned vs cached).
    """
    stages = RunStages.from_keywords(options, keywords, built=("captioner",), captions_only=True)
    image_set = load_image_set(images, hashes=stages.cache.file_hashes()).require(1)
    captions, image_set = stages.captioning.caption_set(image_set)
    table = pd.DataFrame(
        {"source": [it.source for it in image_set.items], "sha256": image_set.keys,
         "caption": [captions[k] for k in image_set.keys]}
    )
    table.attrs.update(captioner=stages.captioning.spec, skipped=[asdict(s) for s in image_set.skipped],
                       captions=asdict(stages.captioning.stats))
    return table


def propose(set_a, set_b, options: RunOptions | None = None, *, stages: RunStages | None = None,
            **keywords) -> list[str]:
    """Candidate differences: short phrases more true of ``set_a`` than of ``set_b``.

    Takes the same options as :func:`compare`; for the B-over-A phrases call
    ``propose(set_b, set_a, ...)``. Returns the phrases in proposal order, duplicates merged.
    With ``holdout``, the proposer sees the proposal split of each set, as in :func:`compare`.
    """
    stages = RunStages.from_keywords(options, keywords, stages=stages, proposing=True)
    if stages.options.rare:  # the images least like B come from embeddings, which a Comparison keeps
        raise InputError("rare= shows the proposer the images least like the other set: use "
                         "visdiff.Comparison(set_a, set_b, rare=...).propose() or compare(..., rare=...)")
    sets = dict(zip("ab", load_sets(set_a, set_b, stages)))
    split = holdout_split(stages.options, sets["a"], sets["b"])
    if split is not None:
        sets = split.proposal_sets(sets)
    return stages.propose(sets["a"], sets["b"])


def rank(hypotheses: Sequence[str], set_a, set_b, options: RunOptions | None = None, *,
         stages: RunStages | None = None, **keywords) -> RankedTable:
    """Score every image of A and B against every hypothesis and rank the hypotheses.

    ``set_a`` and ``set_b`` are anything :func:`visdiff.load_image_set` takes (folder, CSV,
    list of paths or PIL images, ImageSet). ``scorer`` is a spec such as
    ``open_clip:ViT-bigG-14:laion2b_s39b_b160k`` (the paper's ranker) or a built scorer; default
    the profile's. Other options: ``alpha``, ``device``, ``batch_size``, ``cache_dir``...

    One call on a fresh :class:`~visdiff.comparison.Comparison`; to rank again on the same
    sets, keep a Comparison (its embeddings stay loaded). Returns the :func:`rank_scores`
    table; ``table.attrs`` records the scorer, set sizes, the skipped inputs of each set with
    reasons, and the embedding counts (encoded vs cached).
    """
    # Checked before any image is read or embedded.
    hypotheses = clean_hypotheses(hypotheses)
    return Comparison.of_stages(RunStages.from_keywords(options, keywords, stages=stages), set_a, set_b).rank(hypotheses)


def embed(sets: Sequence, options: RunOptions | None = None, **keywords) -> dict:
    """Embed every image of ``sets`` into the cache, so later runs on them rank from it.

    ``sets`` are anything :func:`visdiff.load_image_set` takes; options as :func:`rank`
    (``scorer``, ``batch_size``, ``shard_images``, ``cache_dir``...). Returns the scorer, each
    set's readable and skipped counts, the embedding counts (encoded, cached, failed, shards)
    and the seconds of each part (``embed_read``, ``embed_map``, ``embed_write``).
    """
    stages = RunStages.from_keywords(options, keywords, built=("scorer",))
    image_sets = [load_image_set(s, hashes=stages.cache.file_hashes()) for s in sets]
    embedded = stages.scoring.embed_sets(*image_sets)
    return {
        "scorer": stages.scoring.spec,
        "sets": [{"name": kept.name, "images": len(kept), "skipped": [asdict(s) for s in kept.skipped]}
                 for _, kept in embedded],
        "embeddings": asdict(stages.scoring.stats),
        "timings": stages.timings.as_dict(),
    }


def compare(set_a, set_b=None, options: RunOptions | None = None, *, score=None, stages: RunStages | None = None,
            **keywords) -> CompareResult | ValueResult:
    """Describe how image set A differs from set B: caption, propose, rank.

    Parameters
    ----------
    set_a, set_b : folder, CSV, list of paths or PIL images, or ImageSet
        Anything :func:`visdiff.load_image_set` takes; at least 2 readable images each.
    options : RunOptions, optional
        Every setting of the run (see :class:`~visdiff.options.RunOptions`).
    **keywords
        Fields of :class:`RunOptions` replacing those of ``options`` (``profile``, ``llm``,
        ``seed``, ``both_directions``...); ``captioner``, ``proposer`` and ``scorer`` may also
        be built objects.

    score : str or sequence of float, optional
        Compare one set (``set_a``, no ``set_b``) against a value per image: the name of its
        table's value column, or one number per image of a list; returns a
        :class:`~visdiff.value_result.ValueResult` ranked by |Spearman's rho| (one call on a
        fresh :class:`~visdiff.value_comparison.ValueComparison`).

    Returns
    -------
    CompareResult
        ``table`` ranked by AUROC, proposals, scores, the captions used, ``config`` (profile,
        options, specs, prompt name and hash, cache counts) and ``timings`` (seconds per stage).
        One call on a fresh :class:`~visdiff.comparison.Comparison`.
    """
    if score is not None and set_b is not None:
        raise InputError("score= compares one set with a value per image: give no set B")
    if score is None and set_b is None:
        raise InputError("give set B, or score= (a value per image of one set)")
    stages = RunStages.from_keywords(options, keywords, stages=stages, proposing=True)
    if score is not None:
        return ValueComparison.of_stages(stages, set_a, score).compare()
    return Comparison.of_stages(stages, set_a, set_b).compare()


def compare_many(sets, options: RunOptions | None = None, *, names: Sequence[str] | None = None,
                 stages: RunStages | None = None, **keywords) -> MultiCompareResult:
    """Describe each image set against the union of the others: caption, propose, rank per set.

    ``sets`` is a sequence (or a mapping name -> set) of at least two of anything
    :func:`visdiff.load_image_set` takes; ``names`` labels them (default: folder or group
    name). Options as :func:`compare`. All sets are embedded in one pass; the proposer reads
    each set against an equal number of images of every other set, the statistics compare it
    with all of them. Returns a :class:`~visdiff.result.MultiCompareResult`: per set a
    :class:`CompareResult` with A = the set, B = the other sets. One call on a fresh
    :class:`~visdiff.multi.MultiComparison`.
    """
    return MultiComparison(sets, options, names=names, stages=stages, **keywords).compare()
