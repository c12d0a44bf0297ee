"""``--log-to wandb|mlflow`` (visdiff.trackers), offline: wandb in offline mode (its run folder
read back), MLflow on a local file store (read back with ``MlflowClient``). What a tracker is
told, the choice of trackers, a missing package said before any image is read, and a tracker
failing after the outputs are written."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.cli_helpers import run_cli
from visdiff.errors import InputError, ServiceError
from visdiff.options import RunOptions
from visdiff.trackers import TrackedRun, log_run, metric_key, parse_log_to, run_settings

from .conftest import make_image

MINIBENCH = Path(__file__).resolve().parent / "data" / "minibench"


@pytest.fixture
def mlflow_store(tmp_path, monkeypatch) -> str:
    """A local MLflow file store in tmp_path (MLflow 3 takes one with MLFLOW_ALLOW_FILE_STORE)."""
    uri = (tmp_path / "mlruns").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    return uri


@pytest.fixture
def wandb_offline(tmp_path, monkeypatch) -> Path:
    """wandb in offline mode, every folder it writes in tmp_path; returns WANDB_DIR."""
    folder = tmp_path / "wandb-dir"
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(folder))
    for variable, name in (("WANDB_DATA_DIR", "data"), ("WANDB_CACHE_DIR", "cache"), ("WANDB_CONFIG_DIR", "config")):
        monkeypatch.setenv(variable, str(tmp_path / f"wandb-{name}"))
    monkeypatch.delenv("WANDB_PROJECT", raising=False)
    folder.mkdir()
    return folder


def mlflow_run(uri: str):
    """The one run of the ``visdiff`` experiment, its client and the artifacts it holds (paths)."""
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("visdiff")
    [run] = client.search_runs([experiment.experiment_id])

    def listed(path=None):
        for entry in client.list_artifacts(run.info.run_id, path):
            yield from listed(entry.path) if entry.is_dir else [entry.path]

    return run, client, sorted(listed())


def wandb_records(wandb_dir: Path) -> dict[str, list]:
    """The records of the one offline run under ``wandb_dir``, by kind (``run``, ``summary``,
    ``artifact``...): its ``run-*.wandb`` file is a LevelDB-style log (32 KiB blocks, 7-byte
    record headers: CRC, length, type) of protobuf ``Record`` messages."""
    from wandb.proto import wandb_internal_pb2

    [run_file] = wandb_dir.glob("wandb/offline-run-*/run-*.wandb")
    data = run_file.read_bytes()
    assert data[:4] == b":W&B"
    records: dict[str, list] = {}
    pending, position, block = b"", 7, 32768
    while position + 7 <= len(data):
        if block - position % block < 7:  # a block's tail too short for a header is padding
            position += block - position % block
            continue
        length, kind = int.from_bytes(data[position + 4:position + 6], "little"), data[position + 6]
        pending += data[position + 7:position + 7 + length]
        position += 7 + length
        if kind in (1, 4):  # a whole record, or the last piece of one
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.setdefault(record.WhichOneof("record_type"), []).append(record)
            pending = b""
    return records


def wandb_summary(records) -> dict:
    """The run's summary, its updates in order: metric name -> value."""
    return {"/".join(item.nested_key) or item.key: json.loads(item.value_json)
            for record in records["summary"] for item in record.summary.update}


# --- choosing trackers ---------------------------------------------------------------------------

def test_log_to_takes_repeated_and_comma_separated_names_each_once():
    assert parse_log_to(["wandb,mlflow", "MLflow", " wandb "]) == ["wandb", "mlflow"]
    assert parse_log_to(None) == []
    with pytest.raises(InputError, match=r"'neptune' is no tracker; choose from mlflow, wandb"):
        parse_log_to(["mlflow,neptune"])


def test_metric_names_are_ones_both_trackers_take():
    assert metric_key("acc_at_1", "imagenetr+imagenetstar") == "acc_at_1/imagenetr_imagenetstar"


def test_settings_hold_no_credentials():
    options = RunOptions(llm="gpt-4o", base_url="https://user:sk-SECRET@llm.example/v1")
    settings = run_settings("compare", options)
    assert settings["command"] == "compare" and settings["llm"] == "gpt-4o"
    assert "sk-SECRET" not in json.dumps(settings) and not any("key" in name for name in settings)


@pytest.mark.parametrize("command", ["compare", "bench", "sweep"])
def test_an_unknown_tracker_is_a_usage_error_naming_it_and_the_choices(command, dark_and_bright, tmp_path):
    table = tmp_path / "t.csv"
    table.write_text("path,label\n")
    args = {"compare": [*dark_and_bright], "bench": [MINIBENCH, "--out", tmp_path / "out"],
            "sweep": [table, "--by", "label", "--group-a", "x", "--group-b", "y"]}[command]
    result = run_cli(command, *args, "--log-to", "wandb,neptune")
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines() == [
        "error: invalid value for '--log-to': 'neptune' is no tracker; choose from mlflow, wandb "
        "(comma-separated or repeated)"]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("tracker", ["wandb", "mlflow"])
def test_a_missing_tracker_package_is_said_before_any_image_is_read(tracker, dark_and_bright, monkeypatch):
    monkeypatch.setitem(sys.modules, tracker, None)  # import fails as for a package not installed

    def no_image(*args, **kwargs):
        raise AssertionError("an image set was read")

    monkeypatch.setattr("visdiff.cli.options.load_image_set", no_image)
    result = run_cli("compare", *dark_and_bright, "--log-to", tracker)
    assert result.exit_code == 1, result.output
    assert result.stderr.strip().splitlines() == [
        f"error: --log-to {tracker}: this backend needs the '{tracker}' package: pip install 'visdiff[{tracker}]'"]


def test_a_missing_package_stops_bench_before_the_benchmark_is_read(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "mlflow", None)
    monkeypatch.setattr("visdiffbench.load_benchmark", lambda *a, **k: pytest.fail("the benchmark was read"))
    result = run_cli("bench", MINIBENCH, "--out", tmp_path / "out", "--log-to", "mlflow")
    assert result.exit_code == 1 and "pip install 'visdiff[mlflow]'" in result.stderr


def test_an_mlflow_store_that_cannot_work_is_said_before_any_image_is_read(mlflow_store, dark_and_bright, monkeypatch):
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE")  # MLflow 3 refuses a file store without it
    monkeypatch.setattr("visdiff.cli.options.load_image_set", lambda *a, **k: pytest.fail("an image set was read"))
    result = run_cli("compare", *dark_and_bright, "--log-to", "mlflow")
    assert result.exit_code == 1, result.output
    [line] = result.stderr.strip().splitlines()
    assert f"--log-to mlflow: tracking URI {mlflow_store} (MLFLOW_TRACKING_URI) cannot be used" in line
    assert "MLFLOW_ALLOW_FILE_STORE=true" in line


def test_a_score_col_run_is_logged_and_a_dry_run_logs_nothing(tmp_path, mlflow_store):
    rows = [{"path": str(make_image(tmp_path / f"{i}.png", (20 * i, 20 * i, 20 * i), noise_seed=i)), "confidence": i}
            for i in range(10)]
    pd.DataFrame(rows).to_csv(tmp_path / "t.csv", index=False)
    result = run_cli("compare", tmp_path / "t.csv", "--score-col", "confidence", "--log-to", "mlflow", "-q")
    assert result.exit_code == 0, result.output
    run, _, artifacts = mlflow_run(mlflow_store)
    assert 0 <= run.data.metrics["best_abs_rho"] <= 1 and "report/report.html" in artifacts
    refused = run_cli("compare", tmp_path / "t.csv", "--score-col", "confidence", "--log-to", "mlflow", "--dry-run")
    assert refused.exit_code == 2 and "--dry-run makes none" in refused.stderr


# --- what is logged ------------------------------------------------------------------------------

def test_compare_logs_settings_table_metrics_and_report_to_both_trackers(dark_and_bright, mlflow_store,
                                                                         wandb_offline):
    result = run_cli("compare", *dark_and_bright, "--log-to", "wandb", "--log-to", "mlflow", "--json", "-")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)  # the trackers wrote nothing to stdout
    ranked = payload["results"]
    best = max(row["auroc"] for row in ranked)
    significant = sum(row["significant"] for row in ranked)
    assert significant >= 1

    run, client, artifacts = mlflow_run(mlflow_store)
    assert run.info.status == "FINISHED" and run.data.tags["visdiff.command"] == "compare"
    assert run.data.params["command"] == "compare" and run.data.params["profile"] == "offline"
    assert run.data.params["merge"] == "true" and run.data.params["llm"] == "null"
    assert run.data.metrics["best_auroc"] == pytest.approx(best)
    assert run.data.metrics["n_significant"] == significant
    assert run.data.metrics["hypotheses"] == len(ranked) and run.data.metrics["llm/requests"] == 0
    # No --out: the report was written for the trackers all the same.
    assert artifacts == ["report/report.html", "report/results.csv", "report/results.json", "tables/ranked.json"]
    folder = Path(client.download_artifacts(run.info.run_id, "report"))
    assert json.loads((folder / "results.json").read_text())["results"][0]["hypothesis"] == ranked[0]["hypothesis"]
    logged_table = json.loads(Path(client.download_artifacts(run.info.run_id, "tables/ranked.json")).read_text())
    assert [row[0] for row in logged_table["data"]] == [row["hypothesis"] for row in ranked]

    records = wandb_records(wandb_offline)
    [started] = records["run"]
    assert started.run.project == "visdiff" and started.run.job_type == "compare"
    config = {item.key: json.loads(item.value_json) for item in started.run.config.update}
    assert config["command"] == "compare" and config["profile"] == "offline" and config["seed"] == 0
    summary = wandb_summary(records)
    assert summary["best_auroc"] == pytest.approx(best) and summary["n_significant"] == significant
    assert summary["ranked/_type"] == "table-file" and summary["ranked/nrows"] == len(ranked)
    report = [r.artifact for r in records["artifact"] if r.artifact.type == "report"]
    assert [(a.name, sorted(e.path for e in a.manifest.contents)) for a in report] == [
        ("compare-report", ["report.html", "results.csv", "results.json"])]
    [table_file] = wandb_offline.glob("wandb/offline-run-*/files/media/table/ranked_*.table.json")
    assert [row[0] for row in json.loads(table_file.read_text())["data"]] == [row["hypothesis"] for row in ranked]


def test_bench_logs_acc_at_1_and_5_per_split(tmp_path, tiny_clip_weights, mlflow_store, wandb_offline):
    vocabulary = tmp_path / "words.txt"
    vocabulary.write_text("red squares\nblue squares\nbright images\ndark images\n")
    out = tmp_path / "out"
    result = run_cli("bench", MINIBENCH, "--split", "easy,hard", "--out", out, "--scorer", tiny_clip_weights,
                     "--proposer", f"vocabulary:{vocabulary}", "--judge", "offline", "--device", "cpu", "--no-merge",
                     "-q", "--log-to", "mlflow,wandb")
    assert result.exit_code == 0, result.output
    summary = pd.read_csv(out / "summary.csv")
    expected = {f"acc_at_{k}/{row['split']}": row[f"acc@{k}"] for row in summary.to_dict("records") for k in (1, 5)}
    assert set(expected) == {"acc_at_1/easy", "acc_at_5/easy", "acc_at_1/hard", "acc_at_5/hard"}

    run, client, artifacts = mlflow_run(mlflow_store)
    assert {name: run.data.metrics[name] for name in expected} == pytest.approx(expected)
    assert run.data.metrics["evaluated/easy"] == 2
    assert run.data.params["command"] == "bench" and run.data.params["judge"] == "offline"
    assert run.data.params["top_k"] == "5"
    assert artifacts == ["results/results.jsonl", "results/summary.csv", "results/summary.md", "tables/summary.json"]

    records = wandb_records(wandb_offline)
    summary_logged = wandb_summary(records)
    assert {name: summary_logged[name] for name in expected} == pytest.approx(expected)
    assert summary_logged["summary/nrows"] == 2  # the per-split table
    [results] = [r.artifact for r in records["artifact"] if r.artifact.type == "results"]
    assert results.name == "bench-results"
    assert sorted(e.path for e in results.manifest.contents) == ["results.jsonl", "summary.csv", "summary.md"]


def test_sweep_logs_its_summary_table_and_index(tmp_path, mlflow_store):
    rows = []
    for label in ("cat", "dog"):
        for i in range(2):
            for correct, color in ((False, (30, 30, 30)), (True, (230, 230, 230))):
                path = make_image(tmp_path / "imgs" / f"{label}-{correct}-{i}.png", color, noise_seed=i)
                rows.append({"path": str(path.relative_to(tmp_path)), "label": label, "correct": str(correct)})
    table = tmp_path / "predictions.csv"
    pd.DataFrame(rows).to_csv(table, index=False)
    result = run_cli("sweep", table, "--by", "label", "--group-a", "False", "--group-b", "True", "--group-col",
                     "correct", "--out", tmp_path / "out", "--no-reports", "-q", "--log-to", "mlflow")
    assert result.exit_code == 0, result.output
    run, client, artifacts = mlflow_run(mlflow_store)
    assert run.data.params["by"] == "label" and run.data.metrics["values"] == run.data.metrics["values_ok"] == 2
    assert artifacts == ["results/index.html", "results/summary.csv", "tables/summary.json"]
    logged = json.loads(Path(client.download_artifacts(run.info.run_id, "tables/summary.json")).read_text())
    assert [row[logged["columns"].index("value")] for row in logged["data"]] == ["cat", "dog"]


# --- a tracker that fails ------------------------------------------------------------------------

def test_a_tracker_failing_at_log_time_loses_no_result_and_exits_1(dark_and_bright, mlflow_store, monkeypatch,
                                                                   tmp_path):
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    def unreachable(self, *args, **kwargs):
        raise MlflowException("API request to http://mlflow.example failed: connection refused")

    monkeypatch.setattr(MlflowClient, "create_experiment", unreachable)
    out = tmp_path / "results"
    result = run_cli("compare", *dark_and_bright, "--out", out, "--log-to", "mlflow", "-q")
    assert result.exit_code == 1, result.output
    wrote, error = result.stderr.strip().splitlines()  # the outputs said, then the failure in one line
    assert wrote.startswith(f"wrote {out / 'report.html'}")
    assert error == (
        "error: --log-to: logging the run failed (mlflow: MlflowException: API request to http://mlflow.example "
        "failed: connection refused); its outputs are written")
    assert json.loads((out / "results.json").read_text())["results"]  # written before the trackers ran
    assert (out / "report.html").is_file() and (out / "results.csv").is_file()
    assert "A = dark  vs  B = bright" in result.stdout  # and the table shown


def test_every_tracker_logs_before_the_failures_are_said():
    logged = []

    class Failing:
        name = "first"

        def log(self, run):
            raise ConnectionError("service down\nwith a second line")

    class Recording:
        name = "second"

        def log(self, run):
            logged.append(run)

    run = TrackedRun("compare", {"command": "compare"})
    with pytest.raises(ServiceError, match=r"^--log-to: logging the run failed \(first: ConnectionError: service down\)"):
        log_run([Failing(), Recording()], run)
    assert logged == [run]


@pytest.mark.skipif(importlib.util.find_spec("sqlalchemy") is not None, reason="a full mlflow install has SQL stores")
def test_mlflows_default_sql_store_without_sqlalchemy_names_the_ways_that_work(dark_and_bright, monkeypatch, tmp_path):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)  # MLflow's default: sqlite:///mlflow.db here
    result = run_cli("compare", *dark_and_bright, "--log-to", "mlflow")
    assert result.exit_code == 1, result.output
    [line] = result.stderr.strip().splitlines()
    assert "the mlflow-skinny client has no SQL store" in line and "MLFLOW_ALLOW_FILE_STORE=true" in line
    assert not (tmp_path / "mlflow.db").exists()
