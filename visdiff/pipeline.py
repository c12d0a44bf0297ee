"""The public API of the VisDiff pipeline: ``caption``, ``propose``, ``rank``, ``compare`` and ``embed``.

Each takes a :class:`~visdiff.options.RunOptions` (``options=``) and/or its fields as keywords
(``profile="paper"``, ``seed=3``...); ``captioner``, ``proposer`` and ``scorer`` may also be
built objects, used as they are (so a benchmark loads its models once for many pairs).
:class:`~visdiff.stages.RunStages` turns the options into stages.

Captions, LLM answers and embeddings are cached by content, so when a late stage fails, a
rerun redoes nothing that finished.

With ``both_directions`` the proposer is asked twice, once with the sets swapped, so any
proposer can describe B as opposed to A; see :func:`visdiff.ranking.rank_directions` for the
table that gives.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import asdict

import pandas as pd

from visdiff.image_sets import ImageSet, load_image_set
from visdiff.options import RunOptions
from visdiff.ranking import clean_hypotheses, rank_directions, rank_scores
from visdiff.result import CompareResult
from visdiff.stages import RunStages

log = logging.getLogger(__name__)

BUILT_STAGES = ("captioner", "proposer", "scorer")


def _stages(options: RunOptions | None, keywords: dict, *, only: Sequence[str] = BUILT_STAGES) -> RunStages:
    """The run's stages from ``options`` and keywords (``None`` means not given); built stage
    objects among the keywords are used as they are, specs become options."""
    keywords = {name: value for name, value in keywords.items() if value is not None}
    built = {name: keywords.pop(name) for name in only if name in keywords and not isinstance(keywords[name], str)}
    return RunStages(RunOptions.build(options, **keywords), **built)


def _load_sets(set_a, set_b, stages: RunStages) -> tuple[ImageSet, ImageSet]:
    hashes = stages.cache.file_hashes()
    image_set_a = load_image_set(set_a, name="A", hashes=hashes).require(2)
    image_set_b = load_image_set(set_b, name="B", hashes=hashes).require(2)
    if sorted(image_set_a.keys) == sorted(image_set_b.keys):
        log.warning("set A and set B hold the same images: no hypothesis can tell them apart (every AUROC is 0.5)")
    return image_set_a, image_set_b


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
    stages = _stages(options, keywords, only=("captioner",))
    image_set = load_image_set(images, hashes=stages.cache.file_hashes()).require(1)
    captions, image_set = stages.captioning.caption_set(image_set)
    table = pd.DataFrame(
        {"source": [it.source for it in image_set.items], "sha256": image_set.keys,
         "caption": [captions[k] for k in image_set.keys]}
    )
    table.attrs.update(captioner=stages.captioning.spec, skipped=[asdict(s) for s in image_set.skipped],
                       captions=asdict(stages.captioning.stats))
    return table


def propose(set_a, set_b, options: RunOptions | None = None, **keywords) -> list[str]:
    """Candidate differences: short phrases more true of ``set_a`` than of ``set_b``.

    Takes the same options as :func:`compare`; for the B-over-A phrases call
    ``propose(set_b, set_a, ...)``. Returns the phrases in proposal order, duplicates merged.
    """
    stages = _stages(options, keywords)
    image_set_a, image_set_b = _load_sets(set_a, set_b, stages)
    return stages.propose(image_set_a, image_set_b)


def rank(hypotheses: Sequence[str], set_a, set_b, options: RunOptions | None = None, **keywords) -> pd.DataFrame:
    """Score every image of A and B against every hypothesis and rank the hypotheses.

    ``set_a`` and ``set_b`` are anything :func:`visdiff.load_image_set` takes (folder, CSV,
    list of paths or PIL images, ImageSet). ``scorer`` is a spec such as
    ``open_clip:ViT-bigG-14:laion2b_s39b_b160k`` (the paper's ranker) or a built scorer; default
    the profile's. Other options: ``alpha``, ``device``, ``batch_size``, ``cache_dir``...

    Returns the :func:`rank_scores` table. ``table.attrs`` records the scorer, set sizes, the
    skipped inputs of each set with reasons, and the embedding counts (encoded vs cached).
    """
    hypotheses = clean_hypotheses(hypotheses)
    stages = _stages(options, keywords, only=("scorer",))
    image_set_a, image_set_b = _load_sets(set_a, set_b, stages)
    [(emb_a, image_set_a), (emb_b, image_set_b)] = stages.scoring.embed_sets(image_set_a, image_set_b)
    image_set_a.require(2)
    image_set_b.require(2)
    scores_a, scores_b = stages.scoring.score_embeddings([emb_a, emb_b], hypotheses)
    table = rank_scores(scores_a, scores_b, hypotheses, alpha=stages.options.alpha)
    table.attrs.update(
        scorer=stages.scoring.spec,
        n_a=len(image_set_a),
        n_b=len(image_set_b),
        skipped_a=[asdict(s) for s in image_set_a.skipped],
        skipped_b=[asdict(s) for s in image_set_b.skipped],
        embeddings=asdict(stages.scoring.stats),
    )
    return table


def embed(sets: Sequence, options: RunOptions | None = None, **keywords) -> dict:
    """Embed every image of ``sets`` into the cache, so later runs on them rank from it.

    ``sets`` are anything :func:`visdiff.load_image_set` takes; options as :func:`rank`
    (``scorer``, ``batch_size``, ``shard_images``, ``cache_dir``...). Returns the scorer, each
    set's readable and skipped counts, the embedding counts (encoded, cached, failed, shards)
    and the seconds of each part (``embed_read``, ``embed_map``, ``embed_write``).
    """
    stages = _stages(options, keywords, only=("scorer",))
    image_sets = [load_image_set(s, hashes=stages.cache.file_hashes()) for s in sets]
    embedded = stages.scoring.embed_sets(*image_sets)
    return {
        "scorer": stages.scoring.spec,
        "sets": [{"name": kept.name, "images": len(kept), "skipped": [asdict(s) for s in kept.skipped]}
                 for _, kept in embedded],
        "embeddings": asdict(stages.scoring.stats),
        "timings": stages.timings.as_dict(),
    }


def compare(set_a, set_b, options: RunOptions | None = None, **keywords) -> CompareResult:
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

    Returns
    -------
    CompareResult
        ``table`` ranked by AUROC, proposals, scores, the captions used, ``config`` (profile,
        options, specs, prompt name and hash, cache counts) and ``timings`` (seconds per stage).
    """
    total_start = time.perf_counter()
    stages = _stages(options, keywords)
    with stages.timings.stage("load_images"):
        image_set_a, image_set_b = _load_sets(set_a, set_b, stages)
    # Embed first: images that fail to decode leave the sets before anyone proposes from them.
    [(emb_a, image_set_a), (emb_b, image_set_b)] = stages.scoring.embed_sets(image_set_a, image_set_b)
    image_set_a.require(2)
    image_set_b.require(2)

    proposals = {"A": stages.propose(image_set_a, image_set_b)}
    if stages.options.both_directions:
        proposals["B"] = stages.propose(image_set_b, image_set_a)
    hypotheses = [h for phrases in proposals.values() for h in phrases]
    scores_a, scores_b = stages.scoring.score_embeddings([emb_a, emb_b], hypotheses)
    with stages.timings.stage("rank"):
        table, columns = rank_directions(scores_a, scores_b, proposals, alpha=stages.options.alpha)
    timings = {**stages.timings.as_dict(), "total": time.perf_counter() - total_start}

    keys_a, keys_b = set(image_set_a.keys), set(image_set_b.keys)
    captions = stages.captioning.captions
    config = {
        **stages.describe(),
        "n_a": len(image_set_a), "n_b": len(image_set_b),
        "skipped_a": [asdict(s) for s in image_set_a.skipped],
        "skipped_b": [asdict(s) for s in image_set_b.skipped],
        "n_proposals": {direction: len(phrases) for direction, phrases in proposals.items()},
    }
    return CompareResult(
        table=table,
        proposals=hypotheses,
        set_a=image_set_a,
        set_b=image_set_b,
        scores_a=scores_a[:, columns],
        scores_b=scores_b[:, columns],
        captions_a={k: c for k, c in captions.items() if k in keys_a},
        captions_b={k: c for k, c in captions.items() if k in keys_b},
        config=config,
        timings=timings,
        proposal_rounds=stages.proposal_rounds,
    )
