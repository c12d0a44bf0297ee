"""``visdiff sweep``: one comparison per value of a column, resumable, with an index page."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tests.cli_helpers import run_cli
from visdiff.options import RunOptions
from visdiff.sweep import SweepSpec, report_folder, run_sweep

from .conftest import make_image


@pytest.fixture
def failures_table(tmp_path):
    """Classifier failures: per class, misclassified images are dark and correct ones bright;
    the class 'rare' has a single misclassified image (too few to compare)."""
    rows = []
    for label in ("cat", "dog"):
        for i in range(3):
            for correct, color in ((False, (30, 30, 30)), (True, (230, 230, 230))):
                path = make_image(tmp_path / "imgs" / f"{label}-{correct}-{i}.png", color, noise_seed=i)
                rows.append({"path": str(path.relative_to(tmp_path)), "label": label, "correct": str(correct)})
    make_image(tmp_path / "imgs" / "rare.png", (10, 10, 10))
    rows.append({"path": "imgs/rare.png", "label": "rare", "correct": "False"})
    table = tmp_path / "predictions.csv"
    pd.DataFrame(rows).to_csv(table, index=False)
    return table


def spec(table) -> SweepSpec:
    return SweepSpec(table=table, by="label", group_a="False", group_b="True", group_column="correct")


def test_sweep_compares_within_each_value_and_resumes(failures_table, tmp_path):
    out = tmp_path / "out"
    first = run_sweep(spec(failures_table), out, RunOptions(show_progress=False))
    assert (first.new_values, first.resumed_values) == (3, 0)
    lines = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    by_value = {line["value"]: line for line in lines}
    assert by_value["cat"]["status"] == by_value["dog"]["status"] == "ok"
    assert (by_value["cat"]["n_a"], by_value["cat"]["n_b"]) == (3, 3)
    assert by_value["rare"]["status"] == "skipped" and "at least 2 needed" in by_value["rare"]["reason"]
    # Misclassified images are the dark ones: the offline scorer's property says so.
    assert by_value["cat"]["hypotheses"][0]["hypothesis"] == "dark, underexposed photos"
    index = (out / "index.html").read_text()
    for value in ("cat", "dog"):
        report = out / "reports" / report_folder(value) / "report.html"
        assert report.is_file() and f'href="reports/{report_folder(value)}/report.html"' in index
    assert list(first.summary["value"]) == ["cat", "dog", "rare"]
    again = run_sweep(spec(failures_table), out, RunOptions(show_progress=False))
    assert (again.new_values, again.resumed_values) == (0, 3)
    assert len((out / "results.jsonl").read_text().splitlines()) == 3


def test_sweep_refuses_other_settings_in_the_same_folder(failures_table, tmp_path):
    run_sweep(spec(failures_table), tmp_path / "out", RunOptions(show_progress=False), reports=False)
    result = run_cli("sweep", str(failures_table), "--by", "label", "--group-col", "correct",
                                 "--group-a", "False", "--group-b", "True", "--seed", "3", "--out", str(tmp_path / "out"))
    assert result.exit_code == 2 and "holds a sweep of other settings (differs in: options.seed)" in result.output


def test_sweep_with_a_misspelt_model_writes_nothing(failures_table, tmp_path):
    out = tmp_path / "out"
    result = run_cli("sweep", str(failures_table), "--by", "label", "--group-col", "correct",
                                 "--group-a", "False", "--group-b", "True", "--clip", "NoSuchArch:x", "--out", str(out))
    assert result.exit_code == 2 and "unknown open_clip architecture 'NoSuchArch'" in result.output
    assert not out.exists()  # a settings file of that model would refuse the corrected rerun


def test_cli_sweep_and_unknown_column(failures_table, tmp_path):
    args = ["sweep", str(failures_table), "--group-col", "correct", "--group-a", "False", "--group-b", "True",
            "--out", str(tmp_path / "out"), "--no-reports", "-q"]
    result = run_cli(*args, "--by", "label")
    assert result.exit_code == 0, result.output
    assert "cat" in result.stdout and "dog" in result.stdout
    summary = pd.read_csv(tmp_path / "out" / "summary.csv")
    assert list(summary["top_hypothesis"])[:2] == ["dark, underexposed photos"] * 2
    result = run_cli(*args, "--by", "species")
    assert result.exit_code == 2 and "no column 'species'; columns: ['path', 'label', 'correct']" in result.output
    result = run_cli(*args, "--by", "label", "--group-a", "Nope")
    assert result.exit_code == 2 and "no group 'Nope' in column 'correct'; groups: ['False', 'True']" in result.output


def test_a_sweep_runs_every_value_on_one_set_of_stages_each_counting_its_own(failures_table, tmp_path,
                                                                             run_stages_built):
    out = tmp_path / "out"
    run_sweep(spec(failures_table), out, RunOptions(show_progress=False, cache_dir=tmp_path / "cache"))
    assert len(run_stages_built) == 1  # was one to check the specs, then one per value
    # Each value counts its own 6 images: dog's are cat's by content (same colours and noise),
    # so found in the cache; a running total would say 6 encoded for dog too.
    counts = {value: json.loads((out / "reports" / report_folder(value) / "results.json").read_text())["config"]
              ["embeddings"] for value in ("cat", "dog")}
    assert [(c["encoded"], c["cached"]) for c in counts.values()] == [(6, 0), (0, 6)]
