"""Comparison by value (score=, --score-col): one set and a number per image, the proposer
shown its two ends, every phrase ranked by Spearman's rho over all images; usage errors exit 2."""

from __future__ import annotations

import logging

import json

import pandas as pd
import pytest
from scipy import stats as scipy_stats

import visdiff
from tests.cli_helpers import run_cli
from tests.conftest import RecordingProposer, make_image
from visdiff.errors import InputError
from visdiff.report.by_value import write_value_outputs

PHRASES = ["bright, overexposed photos", "dark, underexposed photos", "musical instruments"]



@pytest.fixture
def graded(tmp_path):
    """16 grey images from dark to bright, a table of them with brightness as ``value`` (and a
    text column), and the paths in order."""
    paths, rows = [], []
    for i in range(16):
        level = 10 + i * 15
        path = make_image(tmp_path / "images" / f"{i}.png", (level, level, level), noise_seed=i)
        paths.append(path)
        rows.append({"path": f"images/{i}.png", "value": level / 255, "label": f"x{i}"})
    table = tmp_path / "graded.csv"
    pd.DataFrame(rows).to_csv(table, index=False)
    return table, paths, [row["value"] for row in rows]


def test_ranks_by_rho_over_all_images_and_shows_the_proposer_both_ends(graded, offline_models):
    table, paths, values = graded
    proposer = RecordingProposer(PHRASES)
    result = visdiff.compare(paths, score=values, proposer=proposer, show_progress=False, **offline_models)
    assert isinstance(result, visdiff.ValueResult)
    [(top, bottom)] = proposer.seen
    keys = result.image_set.keys
    assert top == [keys[i] for i in (15, 14, 13, 12)] and bottom == [keys[i] for i in (0, 1, 2, 3)]
    rows = result.table.set_index("hypothesis")
    assert rows.loc["bright, overexposed photos", "more_true_of"] == "high values"
    assert rows.loc["dark, underexposed photos", "more_true_of"] == "low values"
    assert list(result.table["rho"].abs()) == sorted(result.table["rho"].abs(), reverse=True)
    for j, hypothesis in enumerate(result.table["hypothesis"]):  # scores follow the table's rows
        expected = scipy_stats.spearmanr(result.scores[:, j], result.values).statistic
        assert rows.loc[hypothesis, "rho"] == pytest.approx(expected, abs=1e-9)


def test_a_hypothesis_no_image_shows_is_named_on_the_value_path_too(graded, offline_models, caplog):
    _, paths, values = graded
    comparison = visdiff.ValueComparison(paths, values, show_progress=False, **offline_models)
    with caplog.at_level(logging.WARNING, logger="visdiff"):
        comparison.rank(["wolfhounds on a lawn", "dark photos"])
    unseen = [r.getMessage() for r in caplog.records if "matched nothing the offline scorer sees" in r.getMessage()]
    assert len(unseen) == 1 and "'wolfhounds on a lawn'" in unseen[0]


def test_table_column_gives_the_values_and_the_report_shows_scatters_and_ends(graded, offline_models, tmp_path):
    table, _, values = graded
    result = visdiff.compare(table, score="value", proposer=RecordingProposer(PHRASES), show_progress=False,
                             **offline_models)
    assert sorted(result.values.tolist()) == sorted(values)
    paths = write_value_outputs(result, tmp_path / "out")
    html = paths["html"].read_text()
    assert html.count("<svg") == len(result.table) and "<circle" in html
    assert "Highest values" in html and "Lowest values" in html and "<script" not in html
    payload = json.loads(paths["json"].read_text())
    assert payload["config"]["by_value"]["quantile"] == 0.25 and len(payload["images"]) == 16


def test_cli_score_col_ranks_by_rho(graded):
    table, _, _ = graded
    done = run_cli("compare", table, "--score-col", "value", "--json", "-", "--quiet")
    assert done.exit_code == 0, done.output
    document = json.loads(done.stdout)
    assert document["score_column"] == "value"
    assert {"rho", "rho_low", "rho_high", "p_rho", "more_true_of"} <= set(document["results"][0])


@pytest.mark.parametrize(("column", "said"), [
    ("label", ("score column 'label' must hold a finite number in every row", "'x0'")),
    ("missing", ("has no --score-col column 'missing'", "'value'")),
])
def test_cli_score_col_usage_errors_name_the_bad_value(graded, column, said):
    table, _, _ = graded
    done = run_cli("compare", table, "--score-col", column)
    assert done.exit_code == 2
    for text in said:
        assert text in done.stderr


def test_cli_score_col_on_a_folder_or_with_set_b_exits_2(graded):
    table, paths, _ = graded
    done = run_cli("compare", paths[0].parent, "--score-col", "value")
    assert done.exit_code == 2 and "reads a column of a table" in done.stderr
    done = run_cli("compare", table, table, "--score-col", "value")
    assert done.exit_code == 2 and "no set B" in done.stderr


def test_api_refuses_what_it_cannot_align(graded):
    table, paths, values = graded
    with pytest.raises(InputError, match="give no set B"):
        visdiff.compare(paths, paths, score=values)
    with pytest.raises(InputError, match="3 values for 16 images"):
        visdiff.compare(paths, score=values[:3], show_progress=False)
    with pytest.raises(InputError, match="a list of images in the same order"):
        visdiff.compare(paths[0].parent, score=values)
    with pytest.raises(InputError, match="holdout compares two sets"):
        visdiff.compare(paths, score=values, holdout=0.5)
