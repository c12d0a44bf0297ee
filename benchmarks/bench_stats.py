"""Ranking statistics: vectorised ``visdiff.rank_scores`` vs a per-hypothesis sklearn/scipy loop.

Scores for 100 hypotheses x 50,000 images in A and 50,000 in B (float32, as CLIP scorers
produce; ``--dtype float64`` for double) in two variants: continuous random and heavily tied
(scores rounded to 2 decimals); ``--variants`` picks. For each, both paths run on the same
matrix in one process (fastest of ``--repeat`` runs each) and the script prints both times,
the speed-up and the largest absolute difference of AUROC, Welch's t and p, and the
Mann-Whitney p. The reference computes what ``rank_scores`` does: ``roc_auc_score`` and
``ttest_ind`` (the loop timed before the flag followed the Mann-Whitney test) plus
``mannwhitneyu``; the speed-up is printed against both. The
vectorised path sorts column blocks in parallel threads on big inputs, so the speed-up
grows with the number of free cores.

Run::

    .venv/bin/python benchmarks/bench_stats.py
    .venv/bin/python benchmarks/bench_stats.py --images 5000 --hypotheses 20   # quick
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from scipy.stats import mannwhitneyu, ttest_ind
from sklearn.metrics import roc_auc_score

from visdiff import rank_scores, score_summary


def make_scores(n_images: int, n_hypotheses: int, *, tied: bool, dtype, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """CLIP-like cosine scores; A is shifted up for some hypotheses so results vary."""
    rng = np.random.default_rng(seed)
    shift = rng.uniform(-0.02, 0.05, size=n_hypotheses)
    a = rng.normal(0.25, 0.03, size=(n_images, n_hypotheses)) + shift
    b = rng.normal(0.25, 0.03, size=(n_images, n_hypotheses))
    if tied:
        a, b = np.round(a, 2), np.round(b, 2)
    return a.astype(dtype), b.astype(dtype)


def reference_loop(a: np.ndarray, b: np.ndarray) -> dict[str, np.ndarray]:
    """One sklearn ``roc_auc_score`` and one scipy one-sided ``ttest_ind`` per hypothesis column."""
    labels = np.r_[np.ones(a.shape[0]), np.zeros(b.shape[0])]
    auroc, t, p = [], [], []
    for j in range(a.shape[1]):
        auroc.append(roc_auc_score(labels, np.r_[a[:, j], b[:, j]]))
        result = ttest_ind(a[:, j], b[:, j], equal_var=False, alternative="greater")
        t.append(result.statistic)
        p.append(result.pvalue)
    return {"auroc": np.array(auroc), "t": np.array(t), "p_welch": np.array(p)}


def mann_whitney_loop(a: np.ndarray, b: np.ndarray) -> dict[str, np.ndarray]:
    """One scipy ``mannwhitneyu(alternative="greater")`` per hypothesis column, default settings."""
    return {"p_greater": np.array([mannwhitneyu(a[:, j], b[:, j], alternative="greater").pvalue
                                   for j in range(a.shape[1])])}


def best_time(fn, repeat: int):
    """(fastest wall time of ``repeat`` calls, last result): a busy machine slows both paths."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def run_variant(name: str, a: np.ndarray, b: np.ndarray, *, repeat: int) -> dict[str, float]:
    hypotheses = [f"hypothesis {j}" for j in range(a.shape[1])]
    # The reference gets float64 copies (made outside the timing) so scipy computes in double.
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    ours_s, table = best_time(lambda: rank_scores(a, b, hypotheses), repeat)
    loop_s, ref = best_time(lambda: reference_loop(a64, b64), repeat)
    mann_whitney_s, mann_whitney = best_time(lambda: mann_whitney_loop(a64, b64), repeat)
    ref.update(mann_whitney)
    # The same call with the column blocks on one thread: what the threads bring here.
    threshold, score_summary._SCORES_PER_THREAD = score_summary._SCORES_PER_THREAD, a.size + b.size + 1
    try:
        one_thread_s, one_thread_table = best_time(lambda: rank_scores(a, b, hypotheses), repeat)
    finally:
        score_summary._SCORES_PER_THREAD = threshold
    assert one_thread_table.equals(table), "threaded and one-thread results differ"

    ours = table.set_index("hypothesis").loc[hypotheses]
    diffs = {col: float(np.max(np.abs(ours[col].to_numpy() - ref[col]))) for col in ("auroc", "t", "p_welch", "p_greater")}
    print(f"[{name}] {a.shape[1]} hypotheses x ({a.shape[0]} A + {b.shape[0]} B) images, {a.dtype}, "
          f"best of {repeat}, {os.cpu_count()} CPUs")
    print(f"[{name}]   visdiff.rank_scores (vectorised): {ours_s:8.3f} s")
    print(f"[{name}]   the same on one thread:           {one_thread_s:8.3f} s  "
          f"(threads: {one_thread_s / ours_s:.2f}x)")
    print(f"[{name}]   sklearn+scipy per-hypothesis loop: {loop_s:8.3f} s  (AUROC + Welch)")
    print(f"[{name}]   + scipy mannwhitneyu per column:   {mann_whitney_s:8.3f} s")
    print(f"[{name}]   speed-up: {(loop_s + mann_whitney_s) / ours_s:6.1f}x against the loop computing the same "
          f"statistics, {loop_s / ours_s:.1f}x against AUROC + Welch alone")
    print(f"[{name}]   max |diff| auroc {diffs['auroc']:.3e}  t {diffs['t']:.3e}  p_welch {diffs['p_welch']:.3e}  "
          f"p_greater {diffs['p_greater']:.3e}")
    return {"ours_s": ours_s, "loop_s": loop_s, "mann_whitney_s": mann_whitney_s, "one_thread_s": one_thread_s, **diffs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=50_000, help="images per set")
    parser.add_argument("--hypotheses", type=int, default=100)
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--variants", nargs="+", choices=["random", "tied"], default=["random", "tied"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each path; the fastest counts")
    args = parser.parse_args()

    print("=== bench_stats ===")
    for i, variant in enumerate(args.variants):
        a, b = make_scores(args.images, args.hypotheses, tied=variant == "tied",
                           dtype=np.dtype(args.dtype), seed=args.seed + i)
        run_variant(variant, a, b, repeat=args.repeat)


if __name__ == "__main__":
    main()
