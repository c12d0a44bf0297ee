"""Run a visdiff configuration over a benchmark: resumable, one JSON line per finished pair.

Output folder layout:

- ``run.json``: the configuration and library versions the results were made with. A rerun
  with a different configuration into the same folder is refused, so one results file never
  mixes configurations.
- ``results.jsonl``: one line per finished pair (``status`` ``ok`` or ``skipped`` with a
  reason), appended, flushed and fsynced as each pair finishes. A rerun skips the pairs
  already there; a torn last line (a crash mid-write) is cut off and that pair is redone.
- ``summary.md``, ``summary.csv``: Acc@1/Acc@5 per split beside the paper's numbers;
  ``summary.md`` and ``diagnosis.csv`` also split the misses per split into never proposed,
  proposed but ranked low, and ranker blind (see :mod:`visdiffbench.diagnosis`).
- ``data_issues.jsonl``: what was wrong with the benchmark files (missing images, ...).
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

import visdiff
from visdiff.atomic import write_text_atomic
from visdiff.errors import InputError
from visdiff.llm.usage import units_usage, usage_line
from visdiff.options import RunOptions
from visdiff.progress import progress_bar
from visdiff.runlog import (
    append_record, check_settings_file, exclusive, hypothesis_rows, library_versions, now, read_records,
)
from visdiff.stages import RunStages
from visdiffbench.data import Benchmark, BenchPair
from visdiffbench.purity import apply_purity
from visdiffbench.diagnosis import BLIND_MARGIN, diagnose, diagnosis_summary
from visdiffbench.judge import Judge
from visdiffbench.metrics import PAPER_NOTE, acc_at_k, summarize, summary_markdown

DIAGNOSIS_NOTE = (
    "never_proposed: no proposal matched the ground truth (judge score 1); ranked_low: one did, below the top k; "
    f"ranker_blind: the ground truth's own AUROC with this scorer is within {BLIND_MARGIN} of 0.5 (checked first). "
    "mean_gt_auroc: the ground-truth phrase scored by the run's scorer."
)

log = logging.getLogger(__name__)

RESULTS_FILE = "results.jsonl"
RUN_FILE = "run.json"
# Bump when the meaning of a results line changes; a folder written by another version is refused.
RESULTS_VERSION = 3
# Table columns kept per hypothesis in a results line.
@dataclass(frozen=True)
class BenchConfig:
    """Everything that determines a benchmark run's results (never API keys).

    ``run`` holds the pipeline's options (profile, stage specs, LLM settings, prompt set, seed,
    alpha, and how to run: device, cache, batch sizes); ``judge_prompt`` the llm judge's
    template file when not the prompt set's; ``top_k`` is how many of the ranked hypotheses
    count for accuracy (Acc@5 needs 5); ``min_images`` the fewest readable images a set may have
    before the pair is skipped.
    """

    run: RunOptions = field(default_factory=RunOptions)
    purity: float = 1.0
    judge: str = "offline"
    judge_llm: str | None = None
    judge_prompt: str | None = None
    top_k: int = 5
    min_images: int = 2

    def __post_init__(self) -> None:
        if not 0.0 <= self.purity <= 1.0:
            raise InputError(f"purity must be between 0 and 1, got {self.purity}")
        if self.top_k < 1:
            raise InputError(f"top_k must be at least 1, got {self.top_k}")
        if self.min_images < 2:
            raise InputError(f"min_images must be at least 2 (a set needs two images to rank), got {self.min_images}")

    def identity(self) -> dict:
        """The settings that shape results, as recorded in ``run.json``."""
        return {"run": self.run.identity(), "purity": self.purity, "judge": self.judge, "judge_llm": self.judge_llm,
                "judge_prompt": self.judge_prompt, "top_k": self.top_k, "min_images": self.min_images}


@dataclass(frozen=True)
class BenchRun:
    """What :func:`run_benchmark` did: the summary over every line in ``results.jsonl``."""

    out_dir: Path
    summary: pd.DataFrame
    records: list[dict]
    diagnosis: pd.DataFrame
    new_pairs: int
    resumed_pairs: int
    new_skipped: int = 0  # of the new pairs, those skipped (too few readable images)
    llm_usage: dict = field(default_factory=dict)  # of the new pairs: usage_record of their LLM calls


def run_benchmark(
    benchmark: Benchmark,
    out_dir: str | os.PathLike,
    *,
    config: BenchConfig,
    judge: Judge,
    stages: RunStages | None = None,
    reports: bool = False,
    show_progress: bool | None = None,
) -> BenchRun:
    """Run ``visdiff.compare`` on every pair of ``benchmark`` not yet in ``out_dir``, judge the top
    hypotheses, append one line per pair, and write the summary tables.

    Parameters
    ----------
    benchmark : Benchmark
        From :func:`visdiffbench.load_benchmark` (optionally ``.select(...)``-ed).
    out_dir : path
        Results folder; created if missing, resumed if it holds a run of the same config.
    config : BenchConfig
    judge : Judge
        Scores the hypotheses of each pair. An LLM judge built with ``llm_pool=stages.llm_pool``
        shares the run's request bound and 429 pause, and its tokens count in each pair's
        ``llm_usage`` (``visdiff bench`` builds it so).
    stages : RunStages, optional
        The stages every pair runs on (``RunStages(config.run, scorer=..., proposer=...)`` to
        give built models); default: built here from ``config.run``, once for all pairs.
    reports : bool
        Also write each pair's HTML report to ``out_dir/reports/<pair id>/``.

    Returns
    -------
    BenchRun
        ``summary`` covers every pair recorded in ``out_dir``, from this and earlier runs.
    """
    # Built here from the specs: the specs are checked before the folder gets its settings, as a
    # misspelt model written there would refuse the corrected rerun. Pairs show no progress of their own.
    if stages is None:
        stages = RunStages(config.run.replace(show_progress=False), proposing=True)
    elif stages.options.identity() != config.run.identity():
        raise InputError("stages= must be built from config.run: the results record config.run's settings")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with exclusive(out, "visdiff bench"):
        return _run_in(out, benchmark, config=config, judge=judge, stages=stages, reports=reports,
                       show_progress=show_progress)


def _run_in(out: Path, benchmark: Benchmark, *, config: BenchConfig, judge: Judge, stages: RunStages,
            reports: bool, show_progress: bool | None) -> BenchRun:
    check_settings_file(out / RUN_FILE, {"results_version": RESULTS_VERSION, "config": config.identity(),
                                          "judge": judge.spec}, what="benchmark results",
                        defaults={"config": BenchConfig().identity()})
    results_path = out / RESULTS_FILE
    records = read_results(results_path)
    done = {r["pair_id"]: r for r in records}
    _check_same_pairs(benchmark, done, results_path)
    todo = [pair for pair in benchmark.pairs if pair.id not in done]
    write_text_atomic(out / "data_issues.jsonl", "".join(json.dumps(asdict(i)) + "\n" for i in benchmark.issues))
    if todo and not any(min(len(p.images_a), len(p.images_b)) >= config.min_images for p in todo):
        # Told before any model loads: a run of skipped pairs would measure nothing.
        raise InputError(f"none of the {len(todo)} pair(s) to run has {config.min_images} image files on disk in both "
                         f"sets (listed in {out / 'data_issues.jsonl'}); VisDiffBench's images are a separate "
                         "download: --root names the folder that holds them")
    versions = library_versions()
    with open(results_path, "a", encoding="utf-8") as results, progress_bar("benchmark pairs", len(todo), enabled=show_progress) as bar:
        for pair in todo:
            record = run_pair(pair, config=config, judge=judge, stages=stages,
                              report_dir=out / "reports" / pair.id if reports else None)
            record["versions"] = versions
            append_record(results, record)
            records.append(record)
            bar.advance()
    summary = summarize(records)
    diagnosis = diagnosis_summary(records)
    title = f"# {', '.join(Path(src).name for src in benchmark.sources)}: {config.run.profile} profile, {judge.spec} judge\n\n"
    write_text_atomic(out / "summary.md", title + summary_markdown(summary) + "\n" + PAPER_NOTE + "\n\n"
                      + f"## Misses (no full match in the top {config.top_k})\n\n" + summary_markdown(diagnosis) + "\n"
                      + DIAGNOSIS_NOTE + "\n\n## LLM usage (every pair recorded)\n\n"
                      + usage_line(units_usage(records, stages.prices)) + "\n")
    write_text_atomic(out / "summary.csv", summary.to_csv(index=False))
    write_text_atomic(out / "diagnosis.csv", diagnosis.to_csv(index=False))
    new_skipped = sum(r["status"] == "skipped" for r in records[len(records) - len(todo):])
    return BenchRun(out, summary, records, diagnosis, new_pairs=len(todo), resumed_pairs=len(done),
                    new_skipped=new_skipped, llm_usage=units_usage(records[len(records) - len(todo):], stages.prices))


def run_pair(
    pair: BenchPair,
    *,
    config: BenchConfig,
    judge: Judge,
    stages: RunStages,
    report_dir: Path | None = None,
) -> dict:
    """Compare one pair on ``stages`` (started afresh for it) and judge its top hypotheses; a
    pair without enough readable images gives a ``skipped`` record with the reason. Service and
    backend failures propagate."""
    started = time.perf_counter()
    pair, swapped = apply_purity(pair, config.purity, seed=config.run.seed)
    record = {
        "pair_id": pair.id, "split": pair.split, "name_a": pair.name_a, "name_b": pair.name_b,
        "difference": pair.difference, "seed": config.run.seed, "purity": config.purity, "swapped": swapped,
    }
    try:
        set_a = _image_set(pair.images_a, side="A", min_images=config.min_images)
        set_b = _image_set(pair.images_b, side="B", min_images=config.min_images)
        result = visdiff.compare(set_a, set_b, stages=stages.start_unit())
    except InputError as e:
        log.warning("skipping pair %s: %s", pair.id, e)
        return {**record, "status": "skipped", "reason": str(e), "judge_scores": [],
                "timings": {"total": time.perf_counter() - started}, "finished_at": now()}
    judge_started = time.perf_counter()
    ranked_rows = result.table[result.table["direction"] == "A"] if "direction" in result.table else result.table
    ranked = list(ranked_rows["hypothesis"])
    # Every proposal is judged: the top_k count for accuracy, the rest tell a miss ranked low
    # from one never proposed.
    all_judgements = judge.judge(ranked, name_a=pair.name_a, name_b=pair.name_b)
    judgements = all_judgements[: config.top_k]
    scores = [j.score for j in judgements]
    judge_seconds = time.perf_counter() - judge_started
    diagnosis = diagnose(gt_phrase=pair.name_a, gt_auroc=_ground_truth_auroc(pair.name_a, result, stages),
                         ranked_aurocs=list(ranked_rows["auroc"]), match_scores=[j.score for j in all_judgements],
                         top_k=config.top_k)
    if report_dir is not None:
        from visdiff.report import write_outputs

        write_outputs(result, report_dir)
    return {
        **record,
        "status": "ok",
        "n_a": len(result.set_a), "n_b": len(result.set_b),
        "skipped_images": [{"set": side, **asdict(s)} for side, image_set in (("A", result.set_a), ("B", result.set_b))
                           for s in image_set.skipped],
        "hypotheses": hypothesis_rows(result.table),
        "judged": [asdict(j) for j in judgements],
        "judge_scores": scores,
        "diagnosis": diagnosis,
        "acc@1": acc_at_k(scores, 1),
        "acc@5": acc_at_k(scores, 5),
        "timings": {**result.timings, "judge": judge_seconds, "total": time.perf_counter() - started},
        "models": result.config,
        "judge": judge.describe(),
        # The pair's LLM calls, judging included (``models`` holds the comparison's alone).
        "llm_usage": stages.llm_usage(),
        "finished_at": now(),
    }


def _ground_truth_auroc(phrase: str, result, stages: RunStages) -> float:
    """AUROC of the ground-truth phrase with the run's scorer, on the pair's embeddings."""
    table = visdiff.rank([phrase], result.set_a, result.set_b, stages=stages)
    return float(table["auroc"].iloc[0])


def read_results(path: Path) -> list[dict]:
    """Records in ``results.jsonl``, first line per pair id (see :func:`visdiff.runlog.read_records`:
    a torn last line is cut and that pair redone; a line that is not a record is an ``InputError``)."""
    return read_records(path, key="pair_id", required=("pair_id", "split"), kind="benchmark")


def _check_same_pairs(benchmark: Benchmark, done: dict[str, dict], results_path: Path) -> None:
    """A recorded pair id must name the same set pair, or the folder holds another benchmark."""
    for pair in benchmark.pairs:
        record = done.get(pair.id)
        if record is not None and (record.get("name_a"), record.get("name_b")) != (pair.name_a, pair.name_b):
            raise InputError(
                f"{results_path} records pair {pair.id} as {record.get('name_a')!r} vs {record.get('name_b')!r}, "
                f"but the benchmark has {pair.name_a!r} vs {pair.name_b!r}; use another --out folder per benchmark"
            )


def _image_set(paths, *, side: str, min_images: int):
    """The readable images of one side, or ``InputError`` saying why there are too few."""
    if len(paths) < min_images:
        raise InputError(f"set {side} has {len(paths)} image file(s) on disk; at least {min_images} needed")
    return visdiff.load_image_set(list(paths), name=side).require(min_images)
