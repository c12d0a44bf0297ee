"""Sweeps: one comparison per value of a table column (class by class), sharing models and the
cache, resumable like ``bench`` (one fsynced line per value, see :mod:`visdiff.runlog`).

Within each value of ``by``, set A is the rows whose group column is ``group_a`` and set B those
whose group column is ``group_b`` (e.g. per class: A = ImageNetV2, B = ImageNet; or A =
misclassified, B = correctly classified). The results folder gets ``results.jsonl`` (one line
per value: sizes, top hypotheses with their statistics, or why the value was skipped),
``summary.csv``, one report per value under ``reports/`` and ``index.html`` linking them.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from visdiff.atomic import write_text_atomic
from visdiff.errors import InputError
from visdiff.image_sets import ImageSet
from visdiff.sources import load_image_set
from visdiff.jsonable import to_jsonable
from visdiff.llm.usage import units_usage
from visdiff.options import RunOptions
from visdiff.pipeline import compare
from visdiff.plan import RunPlan, plan_compare
from visdiff.progress import progress_bar
from visdiff.report.results import csv_safe
from visdiff.runlog import append_record, check_settings_file, exclusive, hypothesis_rows, now, read_records
from visdiff.stages import RunStages
from visdiff.tables import DEFAULT_GROUP_COLUMN, read_table, require_values

RESULTS_FILE = "results.jsonl"
SPEC_FILE = "sweep.json"
SUMMARY_COLUMNS = ["value", "status", "n_a", "n_b", "top_hypothesis", "auroc", "q_value", "significant",
                   "n_significant", "report"]
COUNT_COLUMNS = ["n_a", "n_b", "n_significant"]


@dataclass(frozen=True)
class SweepSpec:
    """What to sweep: table, the column whose values are swept, the two groups compared within
    each value, row filters, and how many ranked hypotheses each results line keeps."""

    table: Path
    by: str
    group_a: str
    group_b: str
    group_column: str = DEFAULT_GROUP_COLUMN
    where: dict[str, str] = field(default_factory=dict)
    top: int = 5


@dataclass(frozen=True)
class SweepRun:
    out_dir: Path
    summary: pd.DataFrame
    new_values: int
    resumed_values: int
    llm_usage: dict = field(default_factory=dict)  # of the new values: usage_record of their LLM calls


def sweep_values(spec: SweepSpec, *, pair_by: str | None = None) -> list[str]:
    """The values of ``spec.by`` among the rows that pass ``spec.where``, sorted; the columns
    named (``pair_by`` too) are checked here, before any value runs."""
    table = read_table(spec.table)
    named = [spec.by, spec.group_column, *spec.where, *([pair_by] if pair_by else [])]
    missing = [c for c in named if c not in table.columns]
    if missing:
        raise InputError(f"{spec.table} has no column {missing[0]!r}; columns: {list(table.columns)}")
    for column, value in spec.where.items():
        table = table[table[column].astype(str) == str(value)]
    require_values(table, spec.group_column, [spec.group_a, spec.group_b], spec.table, spec.where)
    return sorted(table[spec.by].astype(str).unique())


def report_folder(value: str) -> str:
    """A file-system-safe, unique folder name for a swept value."""
    readable = re.sub(r"[^\w.-]+", "_", value).strip("._")[:60] or "value"
    return f"{readable}-{hashlib.sha256(value.encode()).hexdigest()[:8]}"


def run_sweep(spec: SweepSpec, out_dir: Path, options: RunOptions, *, reports: bool = True) -> SweepRun:
    """Compare A and B within every value of ``spec.by`` not yet in ``out_dir``; see module doc."""
    values = sweep_values(spec, pair_by=options.pair_by)  # checks the table and its columns before anything is written
    # Specs and the proposer too: settings written with a misspelt model would refuse the corrected rerun.
    # One set of stages for every value (its progress bars off: the sweep has its own).
    stages = RunStages(options.replace(show_progress=False), proposing=True)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with exclusive(out, "visdiff sweep"):
        check_settings_file(out / SPEC_FILE, {"spec": asdict(spec), "options": options.identity()}, what="a sweep",
                            defaults={"options": RunOptions().identity()})
        records = read_results(out)
        done = {r["value"] for r in records}
        todo = [v for v in values if v not in done]
        with open(out / RESULTS_FILE, "a", encoding="utf-8") as results, \
                progress_bar(f"sweep over {spec.by}", len(todo), enabled=options.show_progress) as bar:
            for value in todo:
                record = _compare_value(spec, value, stages, out if reports else None)
                append_record(results, record)
                records.append(record)
                bar.advance()
        summary = summarize(records)
        write_text_atomic(out / "summary.csv", csv_safe(summary).to_csv(index=False))
        write_text_atomic(out / "index.html", render_index(spec, summary))
    return SweepRun(out, summary, new_values=len(todo), resumed_values=len(done),
                    llm_usage=units_usage(records[len(records) - len(todo):], stages.prices))


def plan_sweep(spec: SweepSpec, out_dir: Path, options: RunOptions) -> dict:
    """What :func:`run_sweep` would do for the values not yet in ``out_dir`` (``--dry-run``:
    :mod:`visdiff.plan`), as a record; nothing is written."""
    values = sweep_values(spec, pair_by=options.pair_by)
    stages = RunStages(options.replace(show_progress=False), proposing=True)
    done = {r["value"] for r in read_results(Path(out_dir), repair=False)}
    plan = RunPlan()
    for value in (v for v in values if v not in done):
        try:
            plan.add(plan_compare(stages, list(_value_sets(spec, value, stages, hashes=None))))
        except InputError:
            plan.skipped_units.append(value)
    return plan.record(stages.prices, what="sweep")


def read_results(out_dir: Path, *, repair: bool = True) -> list[dict]:
    """The records of ``out_dir/results.jsonl``, first line per value (:func:`visdiff.runlog.read_records`;
    a torn last line is cut unless not to ``repair``)."""
    return read_records(out_dir / RESULTS_FILE, key="value", required=("value", "status"), kind="sweep", repair=repair)


def _value_sets(spec: SweepSpec, value: str, stages: RunStages, *, hashes) -> tuple[ImageSet, ImageSet]:
    """Sets A and B within ``value`` (``InputError`` when one has fewer than 2 images)."""
    where = {**spec.where, spec.by: value}
    return tuple(load_image_set(spec.table, group=group, group_column=spec.group_column, where=where,
                                name=f"{value}: {group}", pair_by=stages.options.pair_by, hashes=hashes).require(2)
                 for group in (spec.group_a, spec.group_b))


def _compare_value(spec: SweepSpec, value: str, stages: RunStages, out: Path | None) -> dict:
    record = {"value": value, "finished_at": None}
    try:
        set_a, set_b = _value_sets(spec, value, stages, hashes=stages.cache.file_hashes())
        result = compare(set_a, set_b, stages=stages.start_unit())
    except InputError as e:  # too few images of one group for this value: recorded, not fatal
        return {**record, "status": "skipped", "reason": str(e), "finished_at": now()}
    report = None
    if out is not None:
        from visdiff.report import write_outputs

        report = Path("reports") / report_folder(value) / "report.html"
        write_outputs(result, out / report.parent)
    table = result.table
    return {
        **record, "status": "ok", "n_a": len(result.set_a), "n_b": len(result.set_b),
        "hypotheses": hypothesis_rows(table, spec.top),
        "n_significant": int(table["significant"].sum()), "n_hypotheses": len(table),
        "report": str(report) if report else None, "timings": result.timings,
        "llm_usage": result.config["llm_usage"], "finished_at": now(),
    }


def summarize(records: list[dict]) -> pd.DataFrame:
    """One row per swept value: sizes and the best hypothesis with its evidence."""
    rows = []
    for r in sorted(records, key=lambda r: r["value"]):
        top = (r.get("hypotheses") or [{}])[0]
        rows.append({
            "value": r["value"], "status": r["status"], "n_a": r.get("n_a"), "n_b": r.get("n_b"),
            "top_hypothesis": top.get("hypothesis", r.get("reason", "")), "auroc": top.get("auroc"),
            "q_value": top.get("q_value"), "significant": top.get("significant"),
            "n_significant": r.get("n_significant"), "report": r.get("report"),
        })
    # Nullable ints: a skipped value has no counts, and with gaps pandas would keep them as floats (3.0).
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS).astype(dict.fromkeys(COUNT_COLUMNS, "Int64"))


def counts_as_objects(summary: pd.DataFrame) -> pd.DataFrame:
    """``summary`` with its counts as Python ints and None: pandas' missing int (``pd.NA``)
    has no JSON form and prints as "<NA>"."""
    return summary.astype(dict.fromkeys(COUNT_COLUMNS, object)).where(summary.notna(), None)


def render_index(spec: SweepSpec, summary: pd.DataFrame) -> str:
    """``index.html``: the summary table, each value linking to its report."""
    from visdiff.report.html import environment

    return environment().get_template("sweep_index.html.j2").render(
        spec=spec, rows=to_jsonable(counts_as_objects(summary).to_dict("records")), created_at=now())
