"""Value against hypothesis score as scatter geometry for an inline SVG (``--score-col``
reports): the template draws the points; no plotting library, no JavaScript."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from visdiff.report.plots import plot_range

SCATTER_WIDTH = 320
SCATTER_HEIGHT = 200
# Room for the tick labels under the x axis and left of the y axis.
MARGIN = 18
# Room above and right of the points, so a point at the top or right edge is drawn whole.
PAD = 4
# More points than this are drawn as an evenly spaced subsample of the value order: the page
# stays small, and the shape of the cloud stays.
MAX_POINTS = 2000


@dataclass(frozen=True)
class ScatterPlot:
    """Point centres in pixels (x: value, y: score, up is higher) and the ranges they span."""

    width: int
    height: int
    margin: int
    points: tuple[tuple[float, float], ...]
    value_low: float
    value_high: float
    score_low: float
    score_high: float


def value_scatter(values, scores, *, width: int = SCATTER_WIDTH, height: int = SCATTER_HEIGHT) -> ScatterPlot:
    """Scatter geometry of ``scores`` (one hypothesis, one per image) against ``values``.

    >>> plot = value_scatter([0.0, 1.0], [0.0, 1.0], width=122, height=122)
    >>> plot.points
    ((18.0, 104.0), (118.0, 4.0))
    """
    x = np.asarray(values, dtype=np.float64).ravel()
    y = np.asarray(scores, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"values and scores differ in length: {x.size} and {y.size}")
    if x.size > MAX_POINTS:
        keep = np.argsort(x, kind="stable")[np.linspace(0, x.size - 1, MAX_POINTS).round().astype(int)]
        x, y = x[keep], y[keep]
    (x_low, x_high), (y_low, y_high) = plot_range(x), plot_range(y)
    plot_width, plot_height = width - MARGIN - PAD, height - MARGIN - PAD
    px = MARGIN + (x - x_low) / (x_high - x_low) * plot_width
    py = PAD + plot_height - (y - y_low) / (y_high - y_low) * plot_height
    return ScatterPlot(width=width, height=height, margin=MARGIN,
                       points=tuple((round(float(a), 2), round(float(b), 2)) for a, b in zip(px, py)),
                       value_low=x_low, value_high=x_high, score_low=y_low, score_high=y_high)
