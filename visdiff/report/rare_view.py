"""The ``--rare`` part of ``report.html``: the tail test's table and the images of A the
proposer was shown (those least like B), in the order they were chosen."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from visdiff.evidence import Gallery, ThumbnailCache, short_names, top_images
from visdiff.result import CompareResult


@dataclass(frozen=True)
class RareView:
    fraction: float
    tail: float
    rows: list[dict]
    shown: Gallery


def rare_view(result: CompareResult, *, thumbnails: ThumbnailCache | None = None) -> RareView | None:
    """What the page shows of a ``--rare`` run; None for any other run."""
    rare = result.config.get("rare")
    if not rare:
        return None
    position = {key: i for i, key in enumerate(result.set_a.keys)}
    shown = [position[key] for key in rare["shown_a"] if key in position]
    chosen = result.set_a.subset(shown)
    # Scores are the order of choice (1 = least like B), so the gallery keeps that order.
    order = np.arange(1, len(shown) + 1, dtype=np.float64)
    gallery = top_images(chosen, order, result.captions_a, k=len(shown), thumbnails=thumbnails or ThumbnailCache(),
                         names=short_names(chosen), lowest=True)
    columns = [c for c in ("direction", "hypothesis", "tail_count", "tail_share", "tail_expected", "p_tail", "q_tail",
                           "significant_tail", "auroc") if c in result.table.columns]
    return RareView(fraction=rare["fraction"], tail=rare["tail"], rows=result.table[columns].to_dict("records"),
                    shown=gallery)
