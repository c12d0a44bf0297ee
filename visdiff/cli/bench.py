"""``visdiff bench``: run a configuration over a VisDiffBench-format benchmark (resumable)."""

from __future__ import annotations

from collections import Counter
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from visdiff.cli import app
from visdiff.cli.compare import COMPARE_OPTIONS
from visdiff.cli.options import LogToOption, run_command
from visdiff.cli.output import DryRunOption, render_summary, report_llm_usage, results_folder, show_plan, stderr
from visdiff.errors import InputError
from visdiff.options import RunOptions, check_url

BENCH_PANEL = "Benchmark"
JUDGE_PANEL = "Judge"


class JudgeName(str, Enum):
    offline = "offline"
    llm = "llm"


def _splits(value: str | None) -> list[str] | None:
    if value is None:
        return None
    splits = [s.strip().lower() for s in value.split(",") if s.strip()]
    if not splits:
        raise typer.BadParameter("give split names separated by commas, e.g. easy,medium,hard")
    return splits


# Benchmark pairs are lists of images, with no key column to pair by.
@run_command(app, "bench", *(name for name in COMPARE_OPTIONS if name not in ("both_directions", "pair_by", "purity")))
def bench_command(
    bench: Annotated[Path, typer.Argument(exists=True, help="Benchmark: a release .jsonl file, a folder of them, or PairedImageSets.csv / ImageNetR.csv / ImageNetStar.csv.")],
    options: RunOptions,
    root: Annotated[Path | None, typer.Option(exists=True, file_okay=False, help="Folder the image paths are relative to (default: the file's folder; for CSVs <folder>/VisDiffBench if present).", rich_help_panel=BENCH_PANEL)] = None,
    split: Annotated[str | None, typer.Option("--split", help="Only these splits, comma-separated (e.g. easy,medium,hard).", rich_help_panel=BENCH_PANEL)] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="At most N pairs per split.", rich_help_panel=BENCH_PANEL)] = None,
    out: Annotated[str | None, typer.Option("--out", help="Results folder (default: bench-out/<benchmark>-<profile>-<judge>). Rerunning into it resumes.", rich_help_panel=BENCH_PANEL)] = None,
    purity: Annotated[float, typer.Option(min=0.0, max=1.0, help="Swap a fraction 1-p of set A with set B (paper Fig. 4).", rich_help_panel=BENCH_PANEL)] = 1.0,
    min_images: Annotated[int, typer.Option(min=2, help="Skip a pair when a set has fewer readable images.", rich_help_panel=BENCH_PANEL)] = 2,
    top_k: Annotated[int, typer.Option("--top-k", min=1, help="Ranked hypotheses that count for accuracy (Acc@5 needs 5); a miss is a pair with no full match among them.", rich_help_panel=BENCH_PANEL)] = 5,
    reports: Annotated[bool, typer.Option("--reports", help="Also write each pair's HTML report under <out>/reports/.", rich_help_panel=BENCH_PANEL)] = False,
    judge: Annotated[JudgeName | None, typer.Option(help="offline: MiniLM similarity, no API; llm: the paper's 2/1/0 rubric via --judge-llm. Default: the profile's (offline; --profile paper: llm with gpt-4, its requests as the paper's, with the provider's defaults).", rich_help_panel=JUDGE_PANEL, case_sensitive=False, show_default=False)] = None,
    judge_llm: Annotated[str | None, typer.Option(help="Chat model of the llm judge (the paper used GPT-4; default: the profile's).", rich_help_panel=JUDGE_PANEL)] = None,
    judge_base_url: Annotated[str | None, typer.Option(help="Endpoint of the judge model (default: --base-url); the key comes from $OPENAI_API_KEY.", rich_help_panel=JUDGE_PANEL)] = None,
    judge_prompt: Annotated[str | None, typer.Option(help="Template of the llm judge: a .txt file with $name_a, $name_b and $hypothesis (default: the prompt set's judge.txt).", rich_help_panel=JUDGE_PANEL)] = None,
    quiet: bool = False,
    log_to: LogToOption = None,
    dry_run: DryRunOption = False,
) -> None:
    """Run compare on every benchmark pair, judge its hypotheses, and print Acc@1/Acc@5 per split
    beside the paper's numbers, and why each miss was missed. Results go to <out>/results.jsonl (one line per pair) and
    <out>/summary.md / summary.csv; interrupt and rerun to resume."""
    judge, judge_llm = _judge_of_profile(judge, judge_llm, options)
    _check_judge_options(judge, judge_llm, judge_base_url)
    from visdiff.trackers import bench_run, create_trackers, log_run, run_settings

    trackers = create_trackers(log_to, dry_run=dry_run)  # before the benchmark is read or a model loads
    out_folder = results_folder(out)
    from visdiffbench import BenchConfig, create_judge, load_benchmark, run_benchmark
    from visdiffbench.run import DIAGNOSIS_NOTE

    benchmark = load_benchmark(bench, root=root).select(splits=_splits(split), limit=limit)
    _report_issues(benchmark.issues, quiet=quiet)
    config = BenchConfig(run=options, purity=purity, judge=judge.value, judge_llm=judge_llm, judge_prompt=judge_prompt,
                         top_k=top_k, min_images=min_images)
    from visdiff.stages import RunStages

    # One set of stages for every pair; the judge shares its LLM request pool (bound, 429 pause, usage).
    stages = RunStages(options.replace(show_progress=False), proposing=True)
    built_judge = create_judge(judge.value, llm=judge_llm, base_url=judge_base_url or options.base_url,
                               cache=options.cache_root(), prompt=judge_prompt, prompts=options.prompt_set(),
                               params=options.resolved_profile.judge_params, llm_pool=stages.llm_pool)
    out_dir = out_folder or Path("bench-out") / f"{Path(bench).stem}-{options.profile}-{judge.value}"
    if dry_run:
        from visdiffbench.plan import plan_benchmark

        show_plan(plan_benchmark(benchmark, out_dir, config=config, judge=built_judge, stages=stages),
                  title=f"{bench} ({len(benchmark.pairs)} pair(s))")
        return
    run = run_benchmark(benchmark, out_dir, config=config, judge=built_judge, stages=stages, reports=reports,
                        show_progress=options.show_progress)
    from visdiffbench.metrics import PAPER_NOTE

    # Short headers so the tables fit 80 columns; summary.md / summary.csv / diagnosis.csv keep the full names.
    render_summary(run.summary, title=f"{bench} ({options.profile} profile, {judge.value} judge)", caption=PAPER_NOTE,
                   headers={"evaluated": "run", "paper_acc@1": "paper@1", "paper_acc@5": "paper@5"}, text_columns=("split",))
    render_summary(run.diagnosis, title=f"misses: no full match in the top {top_k}", caption=DIAGNOSIS_NOTE,
                   headers={"evaluated": "run", "never_proposed": "never", "ranked_low": "low", "ranker_blind": "blind",
                            "mean_gt_auroc": "gt_auroc"}, text_columns=("split",))
    skipped = f" ({run.new_skipped} skipped: too few readable images)" if run.new_skipped else ""
    stderr.print(f"{run.new_pairs} pair(s) run{skipped}, {run.resumed_pairs} already done; results in {run.out_dir}",
                 highlight=False)
    report_llm_usage(run.llm_usage)  # of the pairs run now
    if trackers:  # summary.md, summary.csv, results.jsonl are written: a tracker failing loses nothing
        settings = run_settings("bench", options, benchmark=str(bench), judge=judge.value, judge_llm=judge_llm,
                                top_k=top_k, purity=purity, min_images=min_images)
        log_run(trackers, bench_run(run.summary, settings=settings, out_dir=run.out_dir, llm_usage=run.llm_usage))


def _judge_of_profile(judge: JudgeName | None, judge_llm: str | None, options) -> tuple[JudgeName, str | None]:
    """The judge follows the profile unless --judge says otherwise: ``paper`` judges with the
    paper's LLM (its model unless --judge-llm names another)."""
    backend, _, model = options.resolved_profile.judge.partition(":")
    if judge is None:
        judge = JudgeName(backend)
    if judge is JudgeName.llm and judge_llm is None and backend == "llm":
        judge_llm = model
    return judge, judge_llm


def _check_judge_options(judge: JudgeName, judge_llm: str | None, judge_base_url: str | None) -> None:
    """The llm judge's model and endpoint, checked before any benchmark file is read or pair runs."""
    if judge is JudgeName.llm and not (judge_llm or "").strip():
        raise InputError("--judge llm needs --judge-llm MODEL (a chat model such as gpt-4o); "
                         "or use --judge offline")
    if judge_base_url is not None:
        try:
            check_url(judge_base_url)
        except InputError as e:
            raise InputError(f"--judge-base-url: {e}") from None



def _report_issues(issues, *, quiet: bool) -> None:
    if not issues:
        return
    counts = Counter(issue.kind for issue in issues)
    stderr.print("benchmark data issues: " + ", ".join(f"{n} {kind.replace('_', ' ')}" for kind, n in counts.items())
                 + " (all listed in <out>/data_issues.jsonl)", highlight=False)
    if not quiet:
        for issue in issues[:5]:
            stderr.print(f"  {issue.pair_id or '-'}: {issue.detail}", highlight=False)
