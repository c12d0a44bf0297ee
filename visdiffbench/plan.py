"""``visdiff bench --dry-run``: what a benchmark run would do for its pairs not yet recorded
(:mod:`visdiff.plan`, plus the judge's requests); reads the benchmark's images, writes nothing."""

from __future__ import annotations

from pathlib import Path

from visdiff.errors import InputError
from visdiff.plan import RunPlan, plan_compare, plan_judging
from visdiff.stages import RunStages
from visdiffbench.data import Benchmark
from visdiffbench.judge import Judge
from visdiffbench.purity import apply_purity
from visdiffbench.run import RESULTS_FILE, BenchConfig, pair_image_set, read_results


def plan_benchmark(benchmark: Benchmark, out_dir: Path, *, config: BenchConfig, judge: Judge,
                   stages: RunStages) -> dict:
    """The plan's record over the pairs of ``benchmark`` not in ``out_dir``'s results yet; a pair
    with too few images on disk is listed as skipped, as the run would skip it."""
    done = {r["pair_id"] for r in read_results(Path(out_dir) / RESULTS_FILE, repair=False)}
    plan = RunPlan()
    for pair in benchmark.pairs:
        if pair.id in done:
            continue
        pair, _ = apply_purity(pair, config.purity, seed=config.run.seed)
        try:
            sets = [pair_image_set(images, side=side, min_images=config.min_images)
                    for images, side in ((pair.images_a, "A"), (pair.images_b, "B"))]
        except InputError:
            plan.skipped_units.append(pair.id)
            continue
        unit = plan_compare(stages, sets)
        plan_judging(unit, judge, unit.hypotheses, name_a=pair.name_a, name_b=pair.name_b)
        plan.add(unit)
    return plan.record(stages.prices, what="bench")
