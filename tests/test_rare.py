"""--rare: the proposer is shown the images of A least like B (not a uniform sample), rows are
ranked by the tail test, the terminal says so, and a bad fraction exits 2 naming it."""

from __future__ import annotations

import pytest

import visdiff
from tests.cli_helpers import run_cli
from tests.conftest import RecordingProposer, make_image
from visdiff.errors import InputError
from visdiff.options import RunOptions
from visdiff.rare import MIN_SHOWN, shown_count
from visdiff.report import write_outputs

PHRASES = ["bright, overexposed photos", "dark, underexposed photos"]


@pytest.fixture
def two_bright_in_a(tmp_path):
    """A: 18 dark images and 2 bright ones; B: 20 dark images."""
    a, b = tmp_path / "a", tmp_path / "b"
    for i in range(20):
        make_image(b / f"{i}.png", (30, 30, 30), noise_seed=100 + i)
        make_image(a / f"{i}.png", (235, 235, 235) if i in (4, 11) else (30, 30, 30), noise_seed=i)
    return a, b


def test_shown_count_follows_the_fraction_with_a_floor():
    assert shown_count(1000, RunOptions(rare=0.02)) == 20
    assert shown_count(100, RunOptions(rare=0.02)) == MIN_SHOWN
    assert shown_count(3, RunOptions(rare=0.5)) == 3


def test_proposer_sees_the_images_least_like_b_and_rows_rank_by_the_tail(two_bright_in_a, offline_models, tmp_path):
    a, b = two_bright_in_a
    proposer = RecordingProposer(PHRASES)
    result = visdiff.compare(a, b, rare=0.1, proposer=proposer, show_progress=False, **offline_models)
    [(shown, _)] = proposer.seen
    bright = {item.key for item in result.set_a.items if item.path.name in ("4.png", "11.png")}
    assert len(shown) == MIN_SHOWN and set(shown[:2]) == bright
    assert result.config["rare"]["shown_a"] == shown
    table = result.table
    assert table.attrs["ranked_by"] == "tail"
    assert table["hypothesis"].iloc[0] == "bright, overexposed photos"
    assert table["tail_count"].iloc[0] == 2 and list(table["p_tail"]) == sorted(table["p_tail"])
    html = write_outputs(result, tmp_path / "out")["html"].read_text()
    assert "Rare differences (--rare 0.1)" in html
    assert html.count('<figure class="a" title=') >= MIN_SHOWN  # the shown images, and the per-row galleries
    rare_part = html[html.index('id="rare"'):html.index("Ranked differences")]
    assert rare_part.count("<figure") == MIN_SHOWN and "4.png" in rare_part and "11.png" in rare_part


def test_rare_fraction_is_checked():
    with pytest.raises(InputError, match=r"rare.*\(0, 0.5\]"):
        RunOptions(rare=0.7)
    done = run_cli("rank", "a", "b", "-H", "x", "--rare", "0.7")
    assert done.exit_code == 2 and "'--rare'" in done.stderr and "0.7" in done.stderr


def test_cli_rank_with_rare_shows_the_tail_table(two_bright_in_a):
    a, b = two_bright_in_a
    done = run_cli("rank", a, b, "-H", "bright, overexposed photos", "-H", "dark, underexposed photos", "--rare", "0.1")
    assert done.exit_code == 0, done.output
    assert "more true of a few images of A" in done.stdout and "tail share" in done.stdout


def test_propose_alone_refuses_rare_rather_than_ignore_it(two_bright_in_a):
    a, b = two_bright_in_a
    with pytest.raises(InputError, match="Comparison"):
        visdiff.propose(a, b, rare=0.1)
