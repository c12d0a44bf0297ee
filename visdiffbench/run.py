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

Pairs run in order on the calling thread: comparison, ground-truth AUROC, report. A judge that
only sends requests (``sends_requests``: the LLM judge) judges each pair in one background
thread, pair after pair, its questions concurrent through the run's :class:`RequestPool` (whose
bound holds for every request of the run), while the next pairs are compared; at most
:data:`PAIRS_AWAITING_JUDGEMENT` compared pairs wait for their judgement. Lines are still written
in pair order, each as a sequential run (``--llm-concurrency 1``, or the offline judge, which runs
a model and judges in the calling thread) writes it: each pair's ``llm_usage`` counts its own
requests wherever they ran (:meth:`RequestPool.counting_into`). When a pair's judging fails, the
pairs before it are written, that pair and the later ones are not (a rerun redoes them) and the
error is raised; an error while comparing a pair first writes the pairs judged before it.
Ctrl-C writes the pairs already judged and waits for no request not yet sent.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

import visdiff
from visdiff.atomic import write_text_atomic
from visdiff.errors import InputError
from visdiff.llm.usage import TokenUsage, units_usage, usage_line, usage_record
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
# Compared pairs that may wait for their judgement (a judge that sends requests) while the next is compared.
PAIRS_AWAITING_JUDGEMENT = 2


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
        ``llm_usage`` (``visdiff bench`` builds it so). A judge with ``sends_requests`` judges
        each pair in the background while the next pairs are compared, when the pool allows
        more than one request in flight (see module doc); results are the same.
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
        def write(record: dict) -> None:
            record["versions"] = versions
            append_record(results, record)
            records.append(record)
            bar.advance()

        in_background = getattr(judge, "sends_requests", False) and stages.llm_pool.concurrency > 1
        with _Judging(enabled=in_background, write=write) as judging:
            for pair in todo:
                try:
                    finish = _compare_pair(pair, config=config, judge=judge, stages=stages,
                                           report_dir=out / "reports" / pair.id if reports else None,
                                           cancel=judging.cancel)
                except Exception:
                    judging.drain()  # the pairs before it were judged before it started (sequentially)
                    raise
                judging.add(finish)
            judging.drain()
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


class _Judging:
    """The pairs compared and waiting for their judgement, written in pair order as they are
    judged: in one background thread when ``enabled``, else at once in the calling thread."""

    def __init__(self, *, enabled: bool, write: Callable[[dict], None]) -> None:
        self.write = write
        self.cancel = threading.Event()  # set on leaving: requests not yet sent are not sent
        self._pending: deque[Future] = deque()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="judge") if enabled else None

    def __enter__(self) -> _Judging:
        return self

    def __exit__(self, kind, error, traceback) -> None:
        if isinstance(error, BaseException) and not isinstance(error, Exception):
            # Ctrl-C: the pairs judged already are written; nothing waits for the others.
            try:
                while self._pending and self._pending[0].done() and self._pending[0].exception() is None:
                    self.write(self._pending.popleft().result())
            except BaseException:  # noqa: BLE001 - the interrupt is what is raised
                log.debug("could not write the pairs judged before the interrupt", exc_info=True)
        self.cancel.set()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)

    def add(self, finish: Callable[[], dict]) -> None:
        """Judge a compared pair (``finish`` gives its record); write those judged, in order,
        waiting while more than :data:`PAIRS_AWAITING_JUDGEMENT` wait."""
        if self._executor is None:
            self.write(finish())
            return
        self._pending.append(self._executor.submit(finish))
        self.drain(keep=PAIRS_AWAITING_JUDGEMENT)

    def drain(self, keep: int = 0) -> None:
        """Write the judged pairs in order, waiting until at most ``keep`` wait; the first
        judging failure (in pair order) is raised, and no later pair is written."""
        while self._pending and (len(self._pending) > keep or self._pending[0].done()):
            self.write(self._pending.popleft().result())


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
    return _compare_pair(pair, config=config, judge=judge, stages=stages, report_dir=report_dir)()


def _compare_pair(pair: BenchPair, *, config: BenchConfig, judge: Judge, stages: RunStages,
                  report_dir: Path | None = None, cancel: threading.Event | None = None) -> Callable[[], dict]:
    """Everything of :func:`run_pair` that uses the stages' models, done now in the calling
    thread (the comparison, the ground truth's AUROC, the report); returns the rest, judging,
    which gives the pair's record wherever it runs. The pair's LLM requests, judging
    included, count into its own usage (``cancel``: see :meth:`RequestPool.counting_into`)."""
    started = time.perf_counter()
    pair, swapped = apply_purity(pair, config.purity, seed=config.run.seed)
    record = {
        "pair_id": pair.id, "split": pair.split, "name_a": pair.name_a, "name_b": pair.name_b,
        "difference": pair.difference, "seed": config.run.seed, "purity": config.purity, "swapped": swapped,
    }
    usage = TokenUsage()
    with stages.llm_pool.counting_into(usage, cancel=cancel):
        try:
            set_a = pair_image_set(pair.images_a, side="A", min_images=config.min_images)
            set_b = pair_image_set(pair.images_b, side="B", min_images=config.min_images)
            result = visdiff.compare(set_a, set_b, stages=stages.start_unit())
        except InputError as e:
            log.warning("skipping pair %s: %s", pair.id, e)
            skipped = {**record, "status": "skipped", "reason": str(e), "judge_scores": [],
                       "timings": {"total": time.perf_counter() - started}}
            return lambda: {**skipped, "finished_at": now()}
        gt_auroc = _ground_truth_auroc(pair.name_a, result, stages)
        if report_dir is not None:
            from visdiff.report import write_outputs

            write_outputs(result, report_dir)
    ranked_rows = result.table[result.table["direction"] == "A"] if "direction" in result.table else result.table
    ranked = list(ranked_rows["hypothesis"])
    compared = {
        **record,
        "status": "ok",
        "n_a": len(result.set_a), "n_b": len(result.set_b),
        "skipped_images": [{"set": side, **asdict(s)} for side, image_set in (("A", result.set_a), ("B", result.set_b))
                           for s in image_set.skipped],
        "hypotheses": hypothesis_rows(result.table),
    }
    compared_seconds = time.perf_counter() - started

    def finish() -> dict:
        judge_started = time.perf_counter()
        with stages.llm_pool.counting_into(usage, cancel=cancel):
            # Every proposal is judged: the top_k count for accuracy, the rest tell a miss
            # ranked low from one never proposed.
            all_judgements = judge.judge(ranked, name_a=pair.name_a, name_b=pair.name_b)
        judge_seconds = time.perf_counter() - judge_started
        judgements = all_judgements[: config.top_k]
        scores = [j.score for j in judgements]
        diagnosis = diagnose(gt_phrase=pair.name_a, gt_auroc=gt_auroc, ranked_aurocs=list(ranked_rows["auroc"]),
                             match_scores=[j.score for j in all_judgements], top_k=config.top_k)
        return {
            **compared,
            "judged": [asdict(j) for j in judgements],
            "judge_scores": scores,
            "diagnosis": diagnosis,
            "acc@1": acc_at_k(scores, 1),
            "acc@5": acc_at_k(scores, 5),
            # ``total``: comparing and judging, not the wait between them.
            "timings": {**result.timings, "judge": judge_seconds, "total": compared_seconds + judge_seconds},
            "models": result.config,
            "judge": judge.describe(),
            # The pair's LLM calls, judging included (``models`` holds the comparison's alone).
            "llm_usage": usage_record(usage.rows(), stages.prices),
            "finished_at": now(),
        }

    return finish


def _ground_truth_auroc(phrase: str, result, stages: RunStages) -> float:
    """AUROC of the ground-truth phrase with the run's scorer, on the pair's embeddings."""
    table = visdiff.rank([phrase], result.set_a, result.set_b, stages=stages)
    return float(table["auroc"].iloc[0])


def read_results(path: Path, *, repair: bool = True) -> list[dict]:
    """Records in ``results.jsonl``, first line per pair id (see :func:`visdiff.runlog.read_records`:
    a torn last line is cut, unless not to ``repair``, and that pair redone; a line that is not a
    record is an ``InputError``)."""
    return read_records(path, key="pair_id", required=("pair_id", "split"), kind="benchmark", repair=repair)


def _check_same_pairs(benchmark: Benchmark, done: dict[str, dict], results_path: Path) -> None:
    """A recorded pair id must name the same set pair, or the folder holds another benchmark."""
    for pair in benchmark.pairs:
        record = done.get(pair.id)
        if record is not None and (record.get("name_a"), record.get("name_b")) != (pair.name_a, pair.name_b):
            raise InputError(
                f"{results_path} records pair {pair.id} as {record.get('name_a')!r} vs {record.get('name_b')!r}, "
                f"but the benchmark has {pair.name_a!r} vs {pair.name_b!r}; use another --out folder per benchmark"
            )


def pair_image_set(paths, *, side: str, min_images: int):
    """The readable images of one side, or ``InputError`` saying why there are too few."""
    if len(paths) < min_images:
        raise InputError(f"set {side} has {len(paths)} image file(s) on disk; at least {min_images} needed")
    return visdiff.load_image_set(list(paths), name=side).require(min_images)
