"""rank_scores (bring your own scores) and rank (images -> ranked table) edge cases."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

import visdiff
from visdiff import stats
from visdiff.jsonable import to_jsonable
from visdiff.errors import InputError
from visdiff.ranking import RESULT_COLUMNS, clean_hypotheses

from .conftest import make_image
from .test_io import truncated_jpeg

HYPOTHESES = ["reddish images", "bluish images", "images of a cat"]


# --- rank_scores ---------------------------------------------------------------------


def test_rank_scores_sorts_by_auroc_and_flags_significance():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(40, 3)) + np.array([2.0, 0.0, -2.0])
    b = rng.normal(size=(30, 3))
    table = visdiff.rank_scores(a, b, ["strong", "none", "reversed"])
    assert list(table.columns) == RESULT_COLUMNS
    assert table["hypothesis"].tolist() == ["strong", "none", "reversed"]
    assert table["auroc"].is_monotonic_decreasing
    assert table["significant"].tolist() == [True, False, False]
    strong = table.iloc[0]
    assert strong["diff"] == pytest.approx(strong["mean_a"] - strong["mean_b"])
    assert strong["q_value"] >= strong["p_greater"]
    assert table.attrs["alpha"] == 0.05


def test_rank_scores_rows_are_the_statistics_sorted_by_auroc_ties_in_hypothesis_order():
    rng = np.random.default_rng(2)
    base = rng.normal(size=(25, 1))
    # Columns 1, 3 and 4 share an AUROC (the same ranks); 2 and 5 share another.
    a = np.hstack([base + 0.2, base + 1.0, base - 0.5, 2 * base + 2.0, base + 1.0, base - 0.5, base])
    b = rng.normal(size=(20, 7))
    b[:, 3] = 2 * b[:, 1]
    b[:, 4] = b[:, 1]
    b[:, 5] = b[:, 2]
    names = [f"h{j}" for j in range(7)]
    table = visdiff.rank_scores(a, b, names)
    welch = stats.separation_stats(a, b)
    assert welch["auroc"][1] == welch["auroc"][3] == welch["auroc"][4] and welch["auroc"][2] == welch["auroc"][5]
    order = sorted(range(7), key=lambda j: -welch["auroc"][j])  # Python's sort is stable
    assert table["hypothesis"].tolist() == [names[j] for j in order]
    for column in ("auroc", "auroc_low", "auroc_high", "t", "p_welch", "p_greater", "mean_a"):
        np.testing.assert_array_equal(table[column].to_numpy(), welch[column][order])
    np.testing.assert_array_equal(table["q_value"].to_numpy(), stats.bh_qvalues(welch["p_greater"])[order])
    assert table.index.tolist() == list(range(7))


def test_correct_delta_is_the_references_share_above_0_3_in_a_minus_b():
    a = np.array([[0.35, 0.1], [0.31, 0.2], [0.1, 0.4], [0.2, 0.29]])
    b = np.array([[0.32, 0.5], [0.0, 0.31]])
    table = visdiff.rank_scores(a, b, ["x", "y"]).set_index("hypothesis")
    assert table.loc["x", "correct_delta"] == pytest.approx(2 / 4 - 1 / 2)
    assert table.loc["y", "correct_delta"] == pytest.approx(1 / 4 - 2 / 2)
    torch_table = visdiff.rank_scores(torch.from_numpy(a), torch.from_numpy(b), ["x", "y"]).set_index("hypothesis")
    assert torch_table["correct_delta"].tolist() == table["correct_delta"].tolist()


def test_alpha_controls_the_flag():
    rng = np.random.default_rng(1)
    a, b = rng.normal(0.5, 1, size=(30, 1)), rng.normal(size=(30, 1))
    p = visdiff.rank_scores(a, b, ["h"])["q_value"].iloc[0]
    assert visdiff.rank_scores(a, b, ["h"], alpha=min(0.99, p * 1.01))["significant"].iloc[0]
    assert not visdiff.rank_scores(a, b, ["h"], alpha=p * 0.99)["significant"].iloc[0]


@pytest.mark.parametrize("alpha", [0.0, 1.0, -0.1, 2.0])
def test_alpha_outside_open_unit_interval_is_an_input_error(alpha):
    with pytest.raises(InputError, match="alpha must be in"):
        visdiff.rank_scores(np.ones((2, 1)), np.zeros((2, 1)), ["h"], alpha=alpha)


def test_hypothesis_count_must_match_columns():
    with pytest.raises(InputError, match="2 hypotheses for 3 score columns"):
        visdiff.rank_scores(np.ones((2, 3)), np.zeros((2, 3)), ["a", "b"])


def test_one_hypothesis_as_a_plain_string_and_1d_scores():
    table = visdiff.rank_scores([0.9, 0.8, 0.7], [0.1, 0.2], "a single hypothesis")
    assert table["hypothesis"].tolist() == ["a single hypothesis"]
    assert table["auroc"].tolist() == [1.0]


def test_thousand_hypotheses():
    rng = np.random.default_rng(2)
    table = visdiff.rank_scores(rng.normal(size=(20, 1000)), rng.normal(size=(25, 1000)), [f"h{i}" for i in range(1000)])
    assert len(table) == 1000 and table["hypothesis"].is_unique
    assert table["q_value"].between(0, 1).all()


def test_constant_scores_give_p_one_and_an_undefined_welch_t_that_serialises():
    a = np.ones((3, 2))
    b = np.ones((4, 2))
    a[:, 1] = [0.9, 0.8, 1.0]
    table = visdiff.rank_scores(a, b, ["constant", "varies"])
    constant = table.set_index("hypothesis").loc["constant"]
    assert constant["auroc"] == 0.5 and constant["constant"]
    assert constant["p_greater"] == 1.0 and constant["q_value"] == 1.0
    assert np.isnan(constant["t"]) and np.isnan(constant["p_welch"])  # Welch's t is undefined there, as in scipy
    assert not constant["significant"]
    records = to_jsonable(table.to_dict("records"))
    text = json.dumps(records, allow_nan=False)  # NaN becomes null, never invalid JSON
    assert {record["hypothesis"]: record["t"] for record in json.loads(text)}["constant"] is None


def test_clean_hypotheses_strips_dedups_and_validates():
    assert clean_hypotheses(["  a  cat ", "A cat", "", "dogs\n", "   "]) == ["a cat", "dogs"]
    assert clean_hypotheses("one") == ["one"]
    with pytest.raises(InputError, match="no hypotheses"):
        clean_hypotheses(["", "  "])
    with pytest.raises(InputError, match="must be strings"):
        clean_hypotheses(["ok", 3])


# --- rank on images ------------------------------------------------------------------


def test_rank_records_sets_scorer_and_embedding_counts(image_dirs, tiny_clip_weights):
    a, b = image_dirs
    table = visdiff.rank(HYPOTHESES, a, b, scorer=tiny_clip_weights)
    assert sorted(table["hypothesis"]) == sorted(HYPOTHESES)
    attrs = table.attrs
    assert (attrs["n_a"], attrs["n_b"], attrs["skipped_a"], attrs["skipped_b"]) == (6, 6, [], [])
    assert attrs["embeddings"]["encoded"] == 12 and attrs["embeddings"]["failed"] == 0
    json.dumps(dict(attrs))  # the CLI writes attrs into --json


def test_sets_of_exactly_two_and_one_hypothesis(tmp_path, tiny_clip_weights):
    a = [make_image(tmp_path / "a" / f"{i}.png", (200, 0, 0), noise_seed=i) for i in range(2)]
    b = [make_image(tmp_path / "b" / f"{i}.png", (0, 0, 200), noise_seed=9 + i) for i in range(2)]
    table = visdiff.rank(["red"], a, b, scorer=tiny_clip_weights)
    assert len(table) == 1 and table.attrs["n_a"] == 2 and table.attrs["n_b"] == 2
    assert table["auroc"].iloc[0] in {0.0, 0.25, 0.5, 0.75, 1.0}


def test_identical_bytes_share_one_embedding(tmp_path, tiny_clip_weights):
    a = tmp_path / "a"
    make_image(a / "one.png", (200, 0, 0), noise_seed=1)
    shutil.copy(a / "one.png", a / "same-bytes-other-name.png")
    make_image(a / "two.png", (200, 0, 0), noise_seed=2)
    b = tmp_path / "b"
    for i in range(3):
        make_image(b / f"{i}.png", (0, 0, 200), noise_seed=10 + i)
    table = visdiff.rank(["red"], a, b, scorer=tiny_clip_weights, use_cache=False)
    assert table.attrs["n_a"] == 3
    assert table.attrs["embeddings"]["encoded"] == 5


@pytest.mark.parametrize("use_cache", [True, False])
def test_same_image_in_both_sets_is_encoded_once(image_dirs, tiny_clip_weights, use_cache):
    a, b = image_dirs
    shutil.copy(a / "img0.png", b / "from_a.png")
    table = visdiff.rank(["red"], a, b, scorer=tiny_clip_weights, use_cache=use_cache)
    assert (table.attrs["n_a"], table.attrs["n_b"]) == (6, 7)
    assert table.attrs["embeddings"]["encoded"] == 12


def test_identical_sets_rank_at_chance(image_dirs, tiny_clip_weights):
    a, _ = image_dirs
    table = visdiff.rank(HYPOTHESES, a, a, scorer=tiny_clip_weights)
    assert (table["auroc"] == 0.5).all()
    assert not table["significant"].any()


def test_truncated_jpeg_is_skipped_at_decode_and_reported(image_dirs, tiny_clip_weights, caplog):
    a, b = image_dirs
    truncated_jpeg(a / "cut.jpg")
    table = visdiff.rank(HYPOTHESES, a, b, scorer=tiny_clip_weights)
    assert table.attrs["n_a"] == 6
    assert [s["source"] for s in table.attrs["skipped_a"]] == [str(a / "cut.jpg")]
    assert table.attrs["skipped_a"][0]["reason"].startswith("unreadable image (image file is truncated")
    assert table.attrs["embeddings"]["failed"] == 1
    assert caplog.text.count("cut.jpg") == 1  # one warning, not one per stage


def test_all_images_of_a_set_undecodable_is_an_input_error(tmp_path, image_dirs, tiny_clip_weights):
    _, b = image_dirs
    a = tmp_path / "broken"
    a.mkdir()
    for i in range(3):
        truncated_jpeg(a / f"cut{i}.jpg")
    with pytest.raises(InputError, match=r"image set 'broken' has 0 readable image\(s\) \(3 unreadable files skipped\)"):
        visdiff.rank(HYPOTHESES, a, b, scorer=tiny_clip_weights)


def test_fewer_than_two_readable_images_is_an_input_error(tmp_path, image_dirs, tiny_clip_weights):
    _, b = image_dirs
    make_image(tmp_path / "single" / "only.png", (1, 2, 3))
    with pytest.raises(InputError, match="image set 'single' has 1 readable image"):
        visdiff.rank(HYPOTHESES, tmp_path / "single", b, scorer=tiny_clip_weights)


def test_pil_images_and_csv_sources(tmp_path, tiny_clip_weights):
    reds = [Image.new("RGB", (40, 40), (200 + i, 10, 10)) for i in range(3)]
    for i in range(3):
        make_image(tmp_path / "imgs" / f"{i}.png", (10, 10, 200), noise_seed=i)
    csv_path = tmp_path / "sets.csv"
    csv_path.write_text("path,group_name\n" + "".join(f"imgs/{i}.png,blue\n" for i in range(3)), encoding="utf-8")
    table = visdiff.rank(["red"], reds, csv_path, scorer=tiny_clip_weights)
    assert (table.attrs["n_a"], table.attrs["n_b"]) == (3, 3)
