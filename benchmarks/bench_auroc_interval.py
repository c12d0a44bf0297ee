"""Calibration of the ranking statistics by simulation: the AUROC interval's coverage and the
Mann-Whitney test's false-positive rate under the null.

For each size (images per set), score distribution and true AUROC, 2,000 hypothesis columns
are drawn at once and ranked by ``visdiff.stats.separation_stats``. Coverage is the share of
columns whose 95% interval holds the true AUROC (nominal 0.95; with 2,000 columns its
standard error is about 0.005). The null rows draw A and B from one distribution and report
the share of columns with ``p_greater`` below 0.05 and 0.01, and Welch's one-sided p beside it.

Run::

    .venv/bin/python benchmarks/bench_auroc_interval.py
    .venv/bin/python benchmarks/bench_auroc_interval.py --sizes 40 --columns 500   # quick
"""

from __future__ import annotations

import argparse

import numpy as np
from scipy.stats import norm

from visdiff import stats

# Normal scores with A shifted by d: true AUROC = Phi(d / sqrt(2)).
NORMAL_SHIFTS = {0.5: 0.0, 0.7: 0.7416, 0.85: 1.4657, 0.95: 2.3262, 0.99: 3.2900}


def draw(distribution: str, target: float, n: int, columns: int, rng) -> tuple[np.ndarray, np.ndarray, float]:
    """(A scores, B scores, true AUROC) for ``columns`` columns of ``n`` images per set."""
    if distribution == "exponential":  # P(X > Y) = r / (1 + r) for rates 1 and 1 / r
        ratio = target / (1 - target)
        return rng.exponential(ratio, (n, columns)), rng.exponential(1, (n, columns)), target
    shift = NORMAL_SHIFTS[target]
    a, b = rng.normal(shift, 1, (n, columns)), rng.normal(0, 1, (n, columns))
    if distribution == "normal, rounded":  # coarse scores: many ties, as a discrete scorer gives
        a, b = np.round(a * 2) / 2, np.round(b * 2) / 2
        return a, b, _true_auroc_of_rounded(shift)
    return a, b, float(norm.cdf(shift / np.sqrt(2)))


def _true_auroc_of_rounded(shift: float, draws: int = 4_000_000) -> float:
    """P(A > B) + 0.5 P(A = B) for half-rounded normals, by a large simulation."""
    rng = np.random.default_rng(12345)
    a = np.round(rng.normal(shift, 1, draws) * 2)
    b = np.round(rng.normal(0, 1, draws) * 2)
    return float(np.mean(a > b) + 0.5 * np.mean(a == b))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[12, 40, 200], help="images per set")
    parser.add_argument("--columns", type=int, default=2000, help="simulated hypotheses per cell")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)

    print(f"=== bench_auroc_interval: {stats.AUROC_INTERVAL_METHOD}, {args.columns} columns per cell ===")
    print("coverage of the 95% interval (nominal 0.95)")
    print(f"{'n per set':>9}  {'distribution':<16}" + "".join(f"  AUROC {t:<4}" for t in NORMAL_SHIFTS))
    for n in args.sizes:
        for distribution in ("normal", "exponential", "normal, rounded"):
            cells = []
            for target in NORMAL_SHIFTS:
                a, b, true_auroc = draw(distribution, target, n, args.columns, rng)
                found = stats.separation_stats(a, b)
                cells.append(np.mean((found["auroc_low"] <= true_auroc) & (true_auroc <= found["auroc_high"])))
            print(f"{n:>9}  {distribution:<16}" + "".join(f"  {c:>10.3f}" for c in cells))

    print("\nnull false-positive rate (A and B from one distribution; nominal 0.05 and 0.01)")
    print(f"{'n per set':>9}  {'distribution':<16}  {'MWU < .05':>9}  {'MWU < .01':>9}  {'Welch < .05':>11}")
    for n in args.sizes:
        for distribution in ("normal", "exponential", "normal, rounded"):
            a, b, _ = draw(distribution, 0.5, n, args.columns, rng)
            found = stats.separation_stats(a, b)
            p, welch = found["p_greater"], found["p_welch"]
            print(f"{n:>9}  {distribution:<16}  {np.mean(p < 0.05):>9.3f}  {np.mean(p < 0.01):>9.3f}  "
                  f"{np.mean(welch < 0.05):>11.3f}")


if __name__ == "__main__":
    main()
