"""Experiment trackers: ``--log-to wandb`` or ``--log-to mlflow`` records a finished run.

A tracker is told one :class:`TrackedRun`: the run's settings (``RunOptions.identity()``, which
holds no credential, and the command), its tables (the ranked hypotheses; bench's and sweep's
summaries), scalar metrics (best AUROC, significant hypotheses, Acc@1/Acc@5 per split, LLM
token totals and cost estimate) and the files a person reads (the report, the summaries),
logged as artifacts. Backends are declared in :data:`TRACKERS` by ``module:factory``, as the
model backends are; a factory imports its package (a missing one names the extra to install)
and reads its configuration from the tracker's own environment variables, offline and cheap:
commands build their trackers before any image is read, and log only once their outputs are
written, so a tracker failing then (a :class:`~visdiff.errors.ServiceError`) loses nothing.

- ``wandb``: ``WANDB_PROJECT`` (default ``visdiff``), ``WANDB_MODE`` (``offline``: a run folder
  under ``WANDB_DIR``, uploaded later with ``wandb sync``), ``WANDB_DIR``; a key from
  ``wandb login`` or ``WANDB_API_KEY``.
- ``mlflow``: ``MLFLOW_TRACKING_URI`` (a server, ``http://host:5000``; or a local folder,
  ``file:./mlruns``, which MLflow 3 accepts with ``MLFLOW_ALLOW_FILE_STORE=true``: the
  ``mlflow-skinny`` client has no ``sqlite:///`` store, full ``mlflow`` has), and
  ``MLFLOW_EXPERIMENT_NAME`` (default ``visdiff``).
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import re
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from visdiff.errors import BackendError, InputError, ServiceError
from visdiff.jsonable import to_jsonable
from visdiff.registry import Registry, require

if TYPE_CHECKING:  # pandas and the results: only when a run is logged
    import pandas as pd

    from visdiff.result import CompareResult, MultiCompareResult
    from visdiff.value_result import ValueResult

DEFAULT_PROJECT = "visdiff"
FLAG = "--log-to"
REPORT_FILES = ("report.html", "results.json", "results.csv")  # what report.write_outputs writes


@dataclass(frozen=True)
class TrackedRun:
    """What a tracker records of one command's run.

    ``tables`` and ``artifacts`` are keyed by name (``ranked``; ``report``); an artifact is
    the list of files logged under that name; ``metrics`` are finite numbers by
    :func:`metric_key` names."""

    command: str
    settings: dict
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    artifacts: dict[str, list[Path]] = field(default_factory=dict)


class Tracker(Protocol):
    """Records a :class:`TrackedRun` somewhere (a service, a local store); ``name`` says where."""

    name: str

    def log(self, run: TrackedRun) -> None: ...


TRACKERS: Registry[Tracker] = Registry("tracker")
TRACKERS.declare("wandb", "visdiff.trackers:_wandb")
TRACKERS.declare("mlflow", "visdiff.trackers:_mlflow")


def parse_log_to(values: Sequence[str] | None) -> list[str]:
    """The tracker names of ``--log-to`` (repeatable, or comma-separated: ``wandb,mlflow``), in
    order, each once; an unknown or empty one is an ``InputError`` naming it and the choices."""
    names: list[str] = []
    for value in values or ():
        for name in value.split(","):
            name = name.strip().lower()
            if name not in TRACKERS.names():
                raise InputError(f"invalid value for {FLAG!r}: {name!r} is no tracker; choose from "
                                 f"{', '.join(TRACKERS.names())} (comma-separated or repeated)")
            if name not in names:
                names.append(name)
    return names


def create_trackers(values: Sequence[str] | None, *, dry_run: bool = False) -> list[Tracker]:
    """The trackers ``--log-to`` names, built: each imports its package and checks its settings,
    offline (a missing package names its extra: ``BackendError``). Commands call this before
    any image is read or model loads; a ``dry_run`` logs nothing, so naming a tracker is a usage error."""
    if dry_run and values:
        raise InputError(f"{FLAG} logs a finished run; --dry-run makes none: leave one of them out")
    trackers = []
    for name in parse_log_to(values):
        try:
            trackers.append(TRACKERS.factory(name)(""))
        except BackendError as e:
            raise BackendError(f"{FLAG} {name}: {e}") from e
    return trackers


def log_run(trackers: Iterable[Tracker], run: TrackedRun) -> None:
    """Log ``run`` to every tracker; those that fail are named in one ``ServiceError`` after
    the others have logged (the run's own outputs are written before this is called)."""
    failed = []
    for tracker in trackers:
        try:
            tracker.log(run)
        except Exception as e:  # any failure of a third-party client: said, the other trackers still log
            failed.append(f"{tracker.name}: {type(e).__name__}: {e}".splitlines()[0])
    if failed:
        raise ServiceError(f"{FLAG}: logging the run failed ({'; '.join(failed)}); its outputs are written")


# --- what each command logs -----------------------------------------------------------------

_KEY_CHARACTERS = re.compile(r"[^\w.\- /]")


def metric_key(*parts: str) -> str:
    """A metric name both trackers accept: parts joined by ``/``, other characters than letters,
    digits, ``_ - . /`` and space made ``_`` (``imagenetr+imagenetstar`` -> ``imagenetr_imagenetstar``)."""
    return "/".join(_KEY_CHARACTERS.sub("_", str(part)) for part in parts)


def usage_metrics(usage: Mapping | None) -> dict[str, float]:
    """LLM requests, tokens and the cost estimate of a usage record (``llm_usage``), if any."""
    total = (usage or {}).get("total")
    if not total:
        return {}
    names = ("requests", "cached", "prompt_tokens", "completion_tokens", "cost_usd")
    return {metric_key("llm", name): float(total[name]) for name in names if name in total}


def compare_run(result: CompareResult | MultiCompareResult | ValueResult, *, settings: dict,
                files: Iterable[Path]) -> TrackedRun:
    """A comparison: its ranked table, best AUROC (best |rho| by value), significant hypotheses, LLM usage; ``files``
    (report.html, results.json, results.csv) as the ``report`` artifact."""
    table = result.table
    metrics = {metric_key("hypotheses"): float(len(table))}
    if "auroc" in table and len(table):
        metrics[metric_key("best_auroc")] = float(table["auroc"].max())
    if "rho" in table and len(table):  # --score-col
        metrics[metric_key("best_abs_rho")] = float(table["rho"].abs().max())
    if "significant" in table:
        metrics[metric_key("n_significant")] = float(table["significant"].sum())
    metrics.update(usage_metrics(result.config.get("llm_usage")))
    return TrackedRun("compare", settings, tables={"ranked": table}, metrics=_finite(metrics),
                      artifacts={"report": list(files)})


def log_comparison(trackers: Sequence[Tracker], result: CompareResult | MultiCompareResult | ValueResult, *,
                   settings: dict, out_dir: Path | None) -> None:
    """Log a comparison whose outputs are written: the report in ``out_dir`` (``--out``), or,
    without one, written for the trackers into a temporary folder, removed after."""
    if not trackers:
        return
    if out_dir is not None:
        log_run(trackers, compare_run(result, settings=settings, files=[out_dir / name for name in REPORT_FILES]))
        return
    from visdiff.report import write_outputs
    from visdiff.report.by_value import write_value_outputs
    from visdiff.value_result import ValueResult

    write = write_value_outputs if isinstance(result, ValueResult) else write_outputs
    with tempfile.TemporaryDirectory(prefix="visdiff-report-") as folder:
        written = write(result, Path(folder))
        log_run(trackers, compare_run(result, settings=settings, files=written.values()))


def bench_run(summary: pd.DataFrame, *, settings: dict, out_dir: Path, llm_usage: Mapping | None) -> TrackedRun:
    """A benchmark run: Acc@1 and Acc@5 per split (``acc_at_1/easy``), the summary table, LLM
    usage of the pairs run now; summary.md, summary.csv and results.jsonl as the ``results`` artifact."""
    metrics = {}
    for row in summary.to_dict("records"):
        for k in (1, 5):
            metrics[metric_key(f"acc_at_{k}", row["split"])] = row[f"acc@{k}"]
        metrics[metric_key("evaluated", row["split"])] = row["evaluated"]
    metrics.update(usage_metrics(llm_usage))
    files = [out_dir / name for name in ("summary.md", "summary.csv", "results.jsonl")]
    return TrackedRun("bench", settings, tables={"summary": summary}, metrics=_finite(metrics),
                      artifacts={"results": [path for path in files if path.is_file()]})


def sweep_run(summary: pd.DataFrame, *, settings: dict, out_dir: Path, llm_usage: Mapping | None) -> TrackedRun:
    """A sweep: the per-value summary table, the values compared, LLM usage; index.html and
    summary.csv as the ``results`` artifact."""
    metrics = {metric_key("values"): float(len(summary))}
    if "status" in summary:
        metrics[metric_key("values_ok")] = float((summary["status"] == "ok").sum())
    metrics.update(usage_metrics(llm_usage))
    files = [out_dir / name for name in ("index.html", "summary.csv")]
    return TrackedRun("sweep", settings, tables={"summary": summary}, metrics=_finite(metrics),
                      artifacts={"results": [path for path in files if path.is_file()]})


def run_settings(command: str, options, **extra) -> dict:
    """The settings a tracker records: the command, ``options.identity()`` (results-shaping
    settings; the endpoint URL with its credentials masked, no key) and ``extra``."""
    return to_jsonable({"command": command, **options.identity(), **extra})


def _finite(metrics: Mapping[str, object]) -> dict[str, float]:
    """The metrics that are numbers (an Acc@k of a split with no evaluated pair is NaN: left out)."""
    numbers = {key: float(value) for key, value in metrics.items() if value is not None}
    return {key: value for key, value in numbers.items() if math.isfinite(value)}


def _cells(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with list and dict cells (merged variants) as JSON text, which every table
    format of the trackers takes."""
    def cell(value):
        return json.dumps(to_jsonable(value), ensure_ascii=False) if isinstance(value, (list, tuple, dict)) else value

    table = table.reset_index(drop=True)
    return table.assign(**{name: column.map(cell) for name, column in table.items() if column.dtype == object})


# --- the backends ------------------------------------------------------------------------------

class WandbTracker:
    """A W&B run per command run: config = settings, the tables as ``wandb.Table``, metrics in
    the run's summary, each artifact a ``wandb.Artifact`` of its files. Quiet: nothing on
    stdout (where ``--json -`` writes)."""

    name = "wandb"

    def __init__(self, wandb) -> None:
        self.wandb = wandb
        self.project = os.environ.get("WANDB_PROJECT") or DEFAULT_PROJECT

    def log(self, run: TrackedRun) -> None:
        wandb = self.wandb
        # Mode and folder read now, not when wandb was first set up in this process.
        tracked = wandb.init(project=self.project, job_type=run.command, config=run.settings,
                             mode=os.environ.get("WANDB_MODE"), dir=os.environ.get("WANDB_DIR"),
                             settings=wandb.Settings(silent=True, console="off", disable_git=True))
        exit_code = 1
        try:
            tracked.log({**{name: wandb.Table(dataframe=_cells(table)) for name, table in run.tables.items()},
                         **run.metrics})
            for name, files in run.artifacts.items():
                if files:
                    artifact = wandb.Artifact(f"{run.command}-{name}", type=name)
                    for path in files:
                        artifact.add_file(str(path), name=path.name)
                    tracked.log_artifact(artifact)
            exit_code = 0
        finally:
            tracked.finish(exit_code=exit_code)


class MlflowTracker:
    """An MLflow run per command run, through ``MlflowClient`` (no global active run): params =
    settings (JSON text for what is not a string), the metrics, each table as a JSON artifact
    (``tables/ranked.json``), each artifact's files under its name (``report/report.html``)."""

    name = "mlflow"
    SQL_STORES = ("sqlite:", "postgresql", "mysql", "mssql")
    MAX_PARAM_CHARS = 6000  # MLflow's limit for a param value
    BATCH = 100  # params per log_batch request (MLflow's limit)

    def __init__(self, mlflow) -> None:
        self.mlflow = mlflow
        self.experiment = os.environ.get("MLFLOW_EXPERIMENT_NAME") or DEFAULT_PROJECT
        uri = mlflow.get_tracking_uri()  # MLFLOW_TRACKING_URI, else MLflow's default (sqlite:///mlflow.db)
        try:  # the store is built here: a URI that cannot work is said before the run, not after
            self.client = mlflow.MlflowClient(uri)
        except Exception as e:  # MLflow's own explanation (a file store names MLFLOW_ALLOW_FILE_STORE=true)
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            if uri.startswith(self.SQL_STORES) and importlib.util.find_spec("sqlalchemy") is None:
                reason = ("the mlflow-skinny client has no SQL store: set MLFLOW_TRACKING_URI to a server "
                          "(http://HOST:5000) or a folder (file:./mlruns, with MLFLOW_ALLOW_FILE_STORE=true), "
                          "or pip install mlflow")
            raise BackendError(f"tracking URI {uri} (MLFLOW_TRACKING_URI) cannot be used: {reason}") from e

    def log(self, run: TrackedRun) -> None:
        from mlflow.entities import Metric, Param

        client = self.client
        experiment = client.get_experiment_by_name(self.experiment)
        experiment_id = experiment.experiment_id if experiment else client.create_experiment(self.experiment)
        run_id = client.create_run(experiment_id, run_name=f"visdiff {run.command}",
                                   tags={"visdiff.command": run.command}).info.run_id
        status = "FAILED"
        try:
            params = [Param(key, self._param(value)) for key, value in run.settings.items()]
            for start in range(0, len(params), self.BATCH):
                client.log_batch(run_id, params=params[start:start + self.BATCH])
            now = int(time.time() * 1000)
            client.log_batch(run_id, metrics=[Metric(key, value, now, 0) for key, value in run.metrics.items()])
            for name, table in run.tables.items():
                client.log_table(run_id, _cells(table), f"tables/{name}.json")
            for name, files in run.artifacts.items():
                for path in files:
                    client.log_artifact(run_id, str(path), artifact_path=name)
            status = "FINISHED"
        finally:
            client.set_terminated(run_id, status)

    def _param(self, value) -> str:
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        return text[: self.MAX_PARAM_CHARS]


def _wandb(model: str = "", **options) -> WandbTracker:
    return WandbTracker(require("wandb", "wandb"))


def _mlflow(model: str = "", **options) -> MlflowTracker:
    return MlflowTracker(require("mlflow", "mlflow"))
