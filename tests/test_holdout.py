"""--holdout: the proposer sees a seeded, content-hashed proposal split of each set; AUROC, p
and q come from the held-out images, the proposal split's figures beside them; results and
report say which figures come from which split."""

from __future__ import annotations

import json
import random

import numpy as np
import pandas as pd
import pytest

import visdiff
from tests.cli_helpers import run_cli
from visdiff.errors import InputError
from visdiff.holdout import Holdout, split_positions
from visdiff.sources import load_image_set
from visdiff.ranking import rank_scores
from visdiff.report import write_outputs
from tests.conftest import RecordingProposer, make_image

PHRASES = ["reddish images", "bluish images", "musical instruments"]



def keys(n: int, prefix: str = "k") -> list[str]:
    return [f"{prefix}{i:03d}" for i in range(n)]


def test_split_is_seeded_stratified_and_independent_of_order():
    proposal, held_out = split_positions(keys(20), 0.5, seed=0)
    assert len(proposal) == len(held_out) == 10 and sorted(proposal + held_out) == list(range(20))
    shuffled = keys(20)
    random.Random(1).shuffle(shuffled)
    _, held_shuffled = split_positions(shuffled, 0.5, seed=0)
    assert {shuffled[i] for i in held_shuffled} == {keys(20)[i] for i in held_out}
    assert split_positions(keys(20), 0.5, seed=0) == (proposal, held_out)
    assert split_positions(keys(20), 0.5, seed=1)[1] != held_out
    assert len(split_positions(keys(10), 0.3, seed=0)[1]) == 3


def test_copies_of_one_image_stay_in_one_split():
    duplicated = keys(6) + ["k000", "k001"]
    proposal, held_out = split_positions(duplicated, 0.5, seed=0)
    for key in ("k000", "k001"):
        positions = {i for i, k in enumerate(duplicated) if k == key}
        assert positions <= set(proposal) or positions <= set(held_out)


@pytest.mark.parametrize("value", [1, 1.0, -0.1, float("nan"), True, "0.5"])
def test_holdout_fraction_is_checked(value):
    with pytest.raises(InputError, match="holdout must be a fraction in \\[0, 1\\)"):
        visdiff.RunOptions(holdout=value)


@pytest.mark.parametrize("other", [{"refine": 1}, {"pair_by": "prompt"}])
def test_holdout_excludes_refinement_and_pairing(other):
    with pytest.raises(InputError, match=f"holdout and {next(iter(other))} exclude each other"):
        visdiff.RunOptions(holdout=0.5, **other)


def test_a_split_too_small_is_an_input_error(tmp_path):
    paths = [make_image(tmp_path / f"{i}.png", (10 * i, 0, 0)) for i in range(3)]
    image_set = load_image_set(paths, name="A")
    with pytest.raises(InputError, match="--holdout 0.5 splits set A \\(3 images\\) into 1 proposal and 2 held-out"
                                         ".*: --holdout needs at least 4 images per set$"):
        Holdout.split({"a": image_set}, 0.5, seed=0)  # it said "use a fraction nearer 0.5" to a run at 0.5
    many = load_image_set([*paths, *(make_image(tmp_path / f"{i}.png", (10 * i, 0, 0)) for i in range(3, 10))])
    with pytest.raises(InputError, match="into 9 proposal and 1 held-out images.*: use a fraction nearer 0.5 or more images$"):
        Holdout.split({"a": many}, 0.1, seed=0)


def test_compare_proposes_on_one_split_and_ranks_on_the_other(image_dirs, tmp_path):
    proposer = RecordingProposer(PHRASES)
    result = visdiff.compare(*image_dirs, profile="offline", proposer=proposer, holdout=0.5, merge=False,
                             show_progress=False)
    record = result.config["holdout"]
    assert (record["fraction"], record["seed"]) == (0.5, 0)
    seen = {"a": set(proposer.seen[0][0]), "b": set(proposer.seen[0][1])}
    for side, image_set, scores in (("a", result.set_a, result.scores_a), ("b", result.set_b, result.scores_b)):
        assert set(record["sets"][side]["proposal_images"]) == seen[side]
        assert record["sets"][side]["n_proposal"] == record["sets"][side]["n_held_out"] == 3
    # The headline statistics are exactly those of the held-out rows; the proposal split's sit beside them.
    held = {side: [i for i, k in enumerate(s.keys) if k not in seen[side]] for side, s in
            (("a", result.set_a), ("b", result.set_b))}
    proposal = {side: [i for i, k in enumerate(s.keys) if k in seen[side]] for side, s in
                (("a", result.set_a), ("b", result.set_b))}
    table = result.table
    hypotheses = list(table["hypothesis"])
    expected = rank_scores(result.scores_a[held["a"]], result.scores_b[held["b"]], hypotheses)
    pd.testing.assert_frame_equal(table[expected.columns], expected, check_dtype=False)
    in_sample = rank_scores(result.scores_a[proposal["a"]], result.scores_b[proposal["b"]], hypotheses)
    in_sample = in_sample.set_index("hypothesis").loc[hypotheses]
    np.testing.assert_allclose(table["auroc_proposal"], in_sample["auroc"])
    np.testing.assert_allclose(table["p_greater_proposal"], in_sample["p_greater"], equal_nan=True)
    assert table.attrs["holdout"] == {"fraction": 0.5, "seed": 0, "n_proposal_a": 3, "n_proposal_b": 3,
                                      "n_held_out_a": 3, "n_held_out_b": 3}
    paths = write_outputs(result, tmp_path / "out")
    payload = json.loads(paths["json"].read_text())
    assert payload["config"]["holdout"]["sets"]["a"]["proposal_images"] == record["sets"]["a"]["proposal_images"]
    assert "auroc_proposal" in paths["csv"].read_text().splitlines()[0]
    page = paths["html"].read_text()
    assert "come from the images the proposer never saw (3 of A, 3 of B" in page and "AUROC (proposal)" in page


def test_propose_and_rank_use_the_same_split(image_dirs):
    proposer = RecordingProposer(PHRASES)
    visdiff.propose(*image_dirs, profile="offline", proposer=proposer, holdout=0.5, seed=3)
    comparison = visdiff.Comparison(*image_dirs, profile="offline", proposer=RecordingProposer(PHRASES), holdout=0.5, seed=3)
    assert set(proposer.seen[0][0]) == {comparison.set_a.keys[i] for i in comparison.holdout.proposal["a"]}
    table = comparison.rank(PHRASES)
    assert {"auroc_proposal", "p_greater_proposal", "q_value_proposal"} <= set(table.columns)
    assert visdiff.rank(PHRASES, *image_dirs, profile="offline", holdout=0.5, seed=3)["auroc"].tolist() == \
        table["auroc"].tolist()


def test_cli_compare_holdout_says_which_split(image_dirs):
    a, b = image_dirs
    result = run_cli("compare", str(a), str(b), "--holdout", "0.5", "--all", "-q")
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())
    assert "from the held-out images (3 of A, 3 of B)" in text and "in sample" in text
    result = run_cli("compare", str(a), str(b), "--holdout", "0.5", "--csv", "-", "-q")
    assert result.stdout.splitlines()[0].endswith("auroc_proposal,p_greater_proposal,"
                                                  "q_value_proposal,significant_proposal,merged,set_a,set_b")


@pytest.mark.parametrize("value, message", [
    ("0.9", "--holdout 0.9 splits set A (6 images) into 1 proposal and 5 held-out images"),
    ("1", "invalid value for '--holdout': must be a fraction in [0, 1), got 1.0"),
])
def test_cli_bad_holdout_exits_2_before_any_embedding(image_dirs, isolated_cache, value, message):
    a, b = image_dirs
    result = run_cli("compare", str(a), str(b), "--holdout", value)
    assert result.exit_code == 2 and message in " ".join(result.output.split())
    assert not list(isolated_cache.rglob("*.npy"))  # nothing was embedded


def test_notebook_table_says_which_split(image_dirs):
    table = visdiff.rank(PHRASES, *image_dirs, profile="offline", holdout=0.5)
    html = table._repr_html_()
    assert "come from the images the proposer never saw (3 of A, 3 of B)" in html and "AUROC (proposal)" in html
    assert "AUROC (proposal)" not in visdiff.rank(PHRASES, *image_dirs, profile="offline")._repr_html_()
