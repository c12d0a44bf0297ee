"""The sweep summary (terminal, summary.csv, index.html) shows sizes and the count of
significant hypotheses as whole numbers and q as the ranked tables do (issue #23, item 7)."""

from __future__ import annotations

import pytest

import visdiff.sweep
from tests.cli_helpers import run_cli
from visdiff.report.results import csv_safe
from visdiff.sweep import SweepRun, SweepSpec, render_index, summarize


@pytest.fixture
def summary():
    """A value compared (sizes, a very small q) beside one skipped: the gaps that made pandas
    keep the counts as floats."""
    return summarize([
        {"value": "cat", "status": "ok", "n_a": 20, "n_b": 18, "n_significant": 4,
         "hypotheses": [{"hypothesis": "dark photos", "auroc": 0.91, "q_value": 3.2e-6, "significant": True}]},
        {"value": "rare", "status": "skipped", "reason": "only 1 image of group 'False'; at least 2 needed"},
    ])


def test_summary_csv_and_index_show_whole_numbers(summary, tmp_path):
    csv = csv_safe(summary).to_csv(index=False)
    assert "cat,ok,20,18,dark photos" in csv and "20.0" not in csv
    spec = SweepSpec(table=tmp_path / "t.csv", by="label", group_a="False", group_b="True")
    index = render_index(spec, summary)
    assert '<td class="num">20</td>' in index and '<td class="num">4</td>' in index and "20.0" not in index
    assert '<th class="num">n significant</th>' in index
    assert "3.20e-06" in index


def test_terminal_summary_shows_whole_numbers_and_small_q_in_scientific_notation(summary, tmp_path, monkeypatch):
    table = tmp_path / "predictions.csv"
    table.write_text("path,label,correct\n")
    monkeypatch.setattr(visdiff.sweep, "run_sweep", lambda spec, out, options, reports: SweepRun(out, summary, 1, 1))
    result = run_cli("sweep", str(table), "--by", "label", "--group-col", "correct",
                                 "--group-a", "False", "--group-b", "True", "--out", str(tmp_path / "out"),
                           env={"COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    cat_row = next(line for line in result.stdout.splitlines() if line.lstrip().startswith("cat"))
    assert cat_row.split()[1:3] == ["20", "18"] and cat_row.split()[-2:] == ["3.20e-06", "4"]
    assert "n sig." in result.stdout and ".00" not in result.stdout
