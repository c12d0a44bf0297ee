"""How much held-out p-values differ from in-sample ones: devbench, offline profile, ``--holdout``.

    .venv/bin/python benchmarks/bench_holdout.py [--devbench ../shared/data/devbench] [--fraction 0.5] [--top 5]

One ``visdiff.compare(..., holdout=FRACTION)`` per pair: the proposer sees the proposal split of
each set, and every hypothesis gets its statistics on that split (in sample: the images the
proposal was chosen on) and on the held-out split (images it never saw), both splits the same
size at 0.5. For each pair's ``--top`` hypotheses by in-sample AUROC (what a run without
held-out images would have shown first) it prints both AUROCs and one-sided Mann-Whitney
p-values (``p_greater``, the p the flag follows), then the median
ratio of held-out to in-sample p-value, and how many hypotheses significant in sample (BH q <
alpha over the pair's hypotheses) stay significant held out; once over all those rows and once
over each pair's top one.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

import visdiff
from visdiff.ranking import format_p_value


def pair_rows(devbench: Path, record: dict, fraction: float, top: int) -> pd.DataFrame:
    result = visdiff.compare([devbench / p for p in record["set1_images"]], [devbench / p for p in record["set2_images"]],
                             profile="offline", holdout=fraction, show_progress=False)
    table = result.table.sort_values("auroc_proposal", ascending=False, kind="stable").head(top)
    return table.assign(pair=record["id"], truth=record["set1"], position=range(1, len(table) + 1))


def summary_line(rows: pd.DataFrame, what: str) -> str:
    ratio = rows["p_greater"] / rows["p_greater_proposal"]
    significant = rows["significant_proposal"].astype(bool)
    stays = (significant & rows["significant"].astype(bool)).sum()
    return (f"{what}: {len(rows)} hypotheses; median AUROC in sample {rows['auroc_proposal'].median():.3f}, held out "
            f"{rows['auroc'].median():.3f}; median p held-out / p in-sample {ratio.median():.3g}, held-out p "
            f"larger for {(ratio > 1).sum()}; "
            f"significant in sample {significant.sum()}, of which held out {stays} "
            f"({significant.sum() - stays} stop being significant); significant held out only "
            f"{(~significant & rows['significant'].astype(bool)).sum()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devbench", type=Path, default=Path("../shared/data/devbench"))
    parser.add_argument("--fraction", type=float, default=0.5)
    parser.add_argument("--top", type=int, default=5)
    args = parser.parse_args()
    records = [json.loads(line) for line in (args.devbench / "devbench.jsonl").read_text().splitlines()]
    rows = pd.concat([pair_rows(args.devbench, r, args.fraction, args.top) for r in records], ignore_index=True)
    print(f"devbench, offline profile, --holdout {args.fraction}: top {args.top} per pair by in-sample AUROC\n")
    print(f"{'pair':6} {'#':>2} {'hypothesis':34} {'AUROC in':>8} {'held':>6} {'p in':>9} {'p held':>9} sig in/held")
    for row in rows.itertuples():
        print(f"{row.pair:6} {row.position:2d} {row.hypothesis[:34]:34} {row.auroc_proposal:8.3f} {row.auroc:6.3f} "
              f"{format_p_value(row.p_greater_proposal):>9} {format_p_value(row.p_greater):>9} "
              f"{'yes' if row.significant_proposal else 'no':>3}/{'yes' if row.significant else 'no'}")
    print()
    print(summary_line(rows, f"top {args.top} of each pair"))
    print(summary_line(rows[rows["position"] == 1], "top 1 of each pair"))


if __name__ == "__main__":
    main()
