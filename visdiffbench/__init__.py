"""visdiffbench: evaluate visdiff configurations on VisDiffBench-format benchmarks.

Loaders (:func:`load_benchmark`, :func:`load_jsonl`, :func:`load_paired_csv`,
:func:`load_group_csv`) work on their own; :func:`run_benchmark` runs ``visdiff.compare`` over
the pairs, judges the top hypotheses against the ground-truth set names and writes a
resumable results file plus Acc@1/Acc@5 per split.
"""

from visdiffbench.data import (
    Benchmark, BenchPair, DataIssue, load_benchmark, load_group_csv, load_jsonl, load_paired_csv,
)
from visdiffbench.purity import apply_purity
from visdiffbench.diagnosis import diagnose, diagnosis_summary
from visdiffbench.judge import Judge, Judgement, LLMJudge, OfflineJudge, create_judge, parse_rubric_answer
from visdiffbench.metrics import PAPER_RESULTS, acc_at_k, summarize, summary_markdown
from visdiffbench.run import BenchConfig, BenchRun, read_results, run_benchmark, run_pair

__all__ = [
    "PAPER_RESULTS", "BenchConfig", "BenchPair", "BenchRun", "Benchmark", "DataIssue", "Judge", "Judgement",
    "LLMJudge", "OfflineJudge", "acc_at_k", "apply_purity", "create_judge", "diagnose", "diagnosis_summary",
    "load_benchmark",
    "load_group_csv", "load_jsonl", "load_paired_csv", "parse_rubric_answer", "read_results", "run_benchmark",
    "run_pair", "summarize", "summary_markdown",
]
