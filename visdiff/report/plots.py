"""Score distributions of A and B as histogram geometry for an inline SVG.

The template draws the rectangles; this module only computes them, so the page needs no
plotting library, no JavaScript and no network. Heights are the fraction of each set's
images per bin, so sets of different sizes compare fairly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PLOT_WIDTH = 320
PLOT_HEIGHT = 120
# Room under the axis for the tick labels.
AXIS_MARGIN = 18
N_BINS = 16


@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class HistogramPlot:
    """Pixel geometry of two overlaid histograms and their means on a shared x axis."""

    width: int
    height: int
    axis_y: float
    bars_a: tuple[Rect, ...]
    bars_b: tuple[Rect, ...]
    mean_a_x: float | None
    mean_b_x: float | None
    low: float
    high: float


def score_histogram(scores_a, scores_b, *, bins: int = N_BINS, width: int = PLOT_WIDTH,
                    height: int = PLOT_HEIGHT) -> HistogramPlot:
    """Histogram geometry of the scores of A and of B over one shared range.

    Parameters
    ----------
    scores_a, scores_b : array-like of shape (n_a,) and (n_b,)
        One hypothesis' score for every image of A and of B. Non-finite values are left out.
    bins : int
        Number of equal-width bins over the pooled range.
    width, height : int
        Size of the drawing in pixels, axis labels included.
    """
    a = np.asarray(scores_a, dtype=np.float64).ravel()
    b = np.asarray(scores_b, dtype=np.float64).ravel()
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    low, high = plot_range(np.concatenate([a, b]))
    edges = np.linspace(low, high, bins + 1)
    frac_a = _fractions(a, edges)
    frac_b = _fractions(b, edges)
    axis_y = height - AXIS_MARGIN
    top = max(frac_a.max(initial=0.0), frac_b.max(initial=0.0)) or 1.0
    scale_y = (axis_y - 4) / top
    bin_width = width / bins

    def bars(fractions: np.ndarray) -> tuple[Rect, ...]:
        return tuple(
            Rect(x=round(i * bin_width, 2), y=round(float(axis_y - f * scale_y), 2),
                 width=round(bin_width, 2), height=round(float(f * scale_y), 2))
            for i, f in enumerate(fractions) if f > 0
        )

    def x_of(values: np.ndarray) -> float | None:
        return round((float(values.mean()) - low) / (high - low) * width, 2) if values.size else None

    return HistogramPlot(width=width, height=height, axis_y=axis_y, bars_a=bars(frac_a),
                         bars_b=bars(frac_b), mean_a_x=x_of(a), mean_b_x=x_of(b), low=low, high=high)


def plot_range(values: np.ndarray) -> tuple[float, float]:
    """The lowest and highest of ``values`` (0 to 1 when there are none), widened when they are
    equal so that a bar or point drawn there has room."""
    low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 1.0)
    if high <= low:
        pad = max(abs(low) * 1e-3, 1e-6)
        low, high = low - pad, high + pad
    return low, high


def _fractions(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    counts, _ = np.histogram(values, bins=edges)
    return counts / values.size if values.size else counts.astype(np.float64)
