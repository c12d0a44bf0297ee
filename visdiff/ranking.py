"""Rank hypotheses by how well a scorer separates image set A from set B.

AUROC orders the hypotheses (the paper found it ranks better than p-values or mean
differences); Welch's t-test (one-sided, A > B) with Benjamini-Hochberg q-values across the
hypotheses flags which separations are significant.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from visdiff import stats
from visdiff.config import default_cache_dir
from visdiff.embeddings.cache import EmbeddingCache
from visdiff.embeddings.encode import EmbedStats, embed_image_set
from visdiff.errors import InputError
from visdiff.io import ImageSet, load_image_set
from visdiff.rankers import Scorer, create_scorer

log = logging.getLogger(__name__)

DEFAULT_ALPHA = 0.05
DEFAULT_SCORER = "offline"

RESULT_COLUMNS = [
    "hypothesis", "auroc", "mean_a", "mean_b", "diff", "effect_size",
    "t", "p_value", "p_greater", "q_value", "significant",
]


def clean_hypotheses(hypotheses: Sequence[str]) -> list[str]:
    """Stripped, non-empty, first occurrence of each (case- and whitespace-insensitive)."""
    if isinstance(hypotheses, str):
        hypotheses = [hypotheses]
    seen: set[str] = set()
    out: list[str] = []
    for h in hypotheses:
        if not isinstance(h, str):
            raise InputError(f"hypotheses must be strings, got {type(h).__name__}: {h!r}")
        text = " ".join(h.split())
        if text and text.lower() not in seen:
            seen.add(text.lower())
            out.append(text)
    if not out:
        raise InputError("no hypotheses to rank (the list is empty or all blank)")
    return out


def rank_scores(scores_a, scores_b, hypotheses: Sequence[str], *, alpha: float = DEFAULT_ALPHA) -> pd.DataFrame:
    """Rank hypotheses from precomputed scores.

    Parameters
    ----------
    scores_a, scores_b : array-like of shape (n_a, m) and (n_b, m)
        Score of every image of A and of B for each of the m hypotheses.
    hypotheses : sequence of m str
    alpha : float
        False-discovery rate for the ``significant`` flag (q-value < alpha).

    Returns
    -------
    pandas.DataFrame sorted by ``auroc`` (descending), one row per hypothesis, columns
    ``hypothesis, auroc, mean_a, mean_b, diff, effect_size, t, p_value`` (two-sided Welch),
    ``p_greater`` (one-sided, A > B), ``q_value`` (BH over ``p_greater``), ``significant``.
    """
    if not 0 < alpha < 1:
        raise InputError(f"alpha must be in (0, 1), got {alpha}")
    welch = stats.separation_stats(scores_a, scores_b)  # validates the scores
    hypotheses = [hypotheses] if isinstance(hypotheses, str) else list(hypotheses)
    if len(hypotheses) != len(welch["auroc"]):
        raise InputError(f"{len(hypotheses)} hypotheses for {len(welch['auroc'])} score columns")
    q = stats.bh_qvalues(welch["p_greater"])
    table = pd.DataFrame(
        {
            "hypothesis": hypotheses,
            "auroc": welch["auroc"],
            "mean_a": welch["mean_a"],
            "mean_b": welch["mean_b"],
            "diff": welch["mean_a"] - welch["mean_b"],
            "effect_size": welch["effect_size"],
            "t": welch["t"],
            "p_value": welch["p_two_sided"],
            "p_greater": welch["p_greater"],
            "q_value": q,
            "significant": np.nan_to_num(q, nan=1.0) < alpha,
        }
    )
    table = table.sort_values("auroc", ascending=False, kind="stable").reset_index(drop=True)
    table.attrs["alpha"] = alpha
    return table


def resolve_scorer(scorer: str | Scorer, **options) -> Scorer:
    return create_scorer(scorer, **options) if isinstance(scorer, str) else scorer


def embedding_cache(scorer: Scorer, *, cache_dir: str | Path | None, use_cache: bool) -> EmbeddingCache | None:
    if not use_cache:
        return None
    return EmbeddingCache(Path(cache_dir) if cache_dir else default_cache_dir(), scorer.cache_id)


def text_embeddings(scorer: Scorer, texts: list[str], cache: EmbeddingCache | None) -> torch.Tensor:
    """``scorer.encode_texts`` with the rows cached beside the image embeddings, so a warm
    run never needs the model (scorers load their weights on first use). Rows go through
    float16 whether cached or fresh, so cold and warm runs give identical scores."""
    keys = [hashlib.sha256(t.encode("utf-8")).hexdigest() for t in texts]
    text_cache = None if cache is None else cache.companion("text")
    found, rows = text_cache.lookup(keys) if text_cache else (np.zeros(len(texts), bool), None)
    if not found.all():
        missing = [t for t, hit in zip(texts, found) if not hit]
        fresh = scorer.encode_texts(missing).float().cpu().numpy().astype(np.float16)
        if text_cache is not None:
            text_cache.add([k for k, hit in zip(keys, found) if not hit], fresh)
        merged = np.empty((len(texts), fresh.shape[1]), np.float16)
        merged[~found] = fresh
        if rows is not None:
            merged[found] = rows
        rows = merged
    return torch.from_numpy(rows.astype(np.float32)).to(scorer.device)


def embed_both(
    scorer: Scorer,
    set_a: ImageSet,
    set_b: ImageSet,
    *,
    cache: EmbeddingCache | None,
    batch_size: int = 64,
    num_workers: int | None = None,
    show_progress: bool | None = None,
    embed_stats: EmbedStats | None = None,
) -> tuple[torch.Tensor, torch.Tensor, ImageSet, ImageSet]:
    """Embed A and B in one pass, so an image in both sets is decoded and encoded once (also
    without a cache) and the decoding workers start once. Returns both embedding tensors and
    both sets without the images that failed to decode."""
    both = ImageSet(set_a.items + set_b.items)
    embeddings, usable = embed_image_set(
        scorer, both, cache=cache, batch_size=batch_size, num_workers=num_workers,
        show_progress=show_progress, stats=embed_stats,
    )
    # Failures are per content hash, and `usable.skipped` lists them in position order.
    usable_keys = set(usable.keys)
    failed_positions = [i for i, item in enumerate(both.items) if item.key not in usable_keys]
    reasons = dict(zip(failed_positions, (s.reason for s in usable.skipped)))
    n_a = len(set_a)
    kept_a = n_a - sum(1 for i in failed_positions if i < n_a)
    return (
        embeddings[:kept_a],
        embeddings[kept_a:],
        set_a.drop({i: r for i, r in reasons.items() if i < n_a}, warn=False),
        set_b.drop({i - n_a: r for i, r in reasons.items() if i >= n_a}, warn=False),
    )


def score_sets(
    hypotheses: list[str],
    set_a: ImageSet,
    set_b: ImageSet,
    scorer: Scorer,
    *,
    cache: EmbeddingCache | None,
    batch_size: int = 64,
    num_workers: int | None = None,
    show_progress: bool | None = None,
    embed_stats: EmbedStats | None = None,
) -> tuple[np.ndarray, np.ndarray, ImageSet, ImageSet]:
    """Score matrices (n_a, m), (n_b, m) and the sets without undecodable images."""
    emb_a, emb_b, set_a, set_b = embed_both(
        scorer, set_a, set_b, cache=cache, batch_size=batch_size, num_workers=num_workers,
        show_progress=show_progress, embed_stats=embed_stats,
    )
    set_a.require(2)
    set_b.require(2)
    text = text_embeddings(scorer, hypotheses, cache)
    scores_a = scorer.score(emb_a, text).float().cpu().numpy()
    scores_b = scorer.score(emb_b, text).float().cpu().numpy()
    return scores_a, scores_b, set_a, set_b


def rank(
    hypotheses: Sequence[str],
    set_a,
    set_b,
    *,
    scorer: str | Scorer = DEFAULT_SCORER,
    alpha: float = DEFAULT_ALPHA,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    batch_size: int = 64,
    num_workers: int | None = None,
    device: str | None = None,
    show_progress: bool | None = None,
) -> pd.DataFrame:
    """Score every image of A and B against every hypothesis and rank the hypotheses.

    ``set_a`` and ``set_b`` are anything :func:`visdiff.load_image_set` takes (folder, CSV,
    list of paths or PIL images, ImageSet). ``scorer`` is a spec such as
    ``open_clip:ViT-bigG-14:laion2b_s39b_b160k`` (the paper's ranker) or a built scorer.

    Returns the :func:`rank_scores` table. ``table.attrs`` records the scorer, set sizes, the
    skipped inputs of each set with reasons, and the embedding counts (encoded vs cached).
    """
    hypotheses = clean_hypotheses(hypotheses)
    image_set_a = load_image_set(set_a, name="A").require(2)
    image_set_b = load_image_set(set_b, name="B").require(2)
    built = resolve_scorer(scorer, **({"device": device} if device else {}))
    embed_stats = EmbedStats()
    scores_a, scores_b, image_set_a, image_set_b = score_sets(
        hypotheses, image_set_a, image_set_b, built,
        cache=embedding_cache(built, cache_dir=cache_dir, use_cache=use_cache),
        batch_size=batch_size, num_workers=num_workers, show_progress=show_progress,
        embed_stats=embed_stats,
    )
    table = rank_scores(scores_a, scores_b, hypotheses, alpha=alpha)
    table.attrs.update(
        scorer=built.spec,
        n_a=len(image_set_a),
        n_b=len(image_set_b),
        skipped_a=[asdict(s) for s in image_set_a.skipped],
        skipped_b=[asdict(s) for s in image_set_b.skipped],
        embeddings=asdict(embed_stats),
    )
    return table
