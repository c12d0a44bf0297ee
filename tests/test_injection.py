"""Names and hypotheses that would command the terminal or forge log lines (control
characters), hypotheses too long for a terminal table, and ambiguous table columns."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from rich.console import Console

from tests.cli_helpers import run_cli
from visdiff.errors import InputError
from visdiff.image_sets import display_path
from visdiff.sources import load_image_set
from visdiff.tables import select_rows

from .conftest import make_image

# An escape sequence that would colour the terminal red, one that would clear it, a newline
# that would start a forged log line, and a C1 control (CSI, an ESC [ of its own).
HOSTILE = "x\x1b[31m\x1b[2J\nWARNING: forged\x9b2J\x07"
SHOWN = "x\\x1b[31m\\x1b[2J\\x0aWARNING: forged\\x9b2J\\x07"


def _no_controls(text: str) -> bool:
    return not any(ord(c) < 0x20 and c != "\n" or 0x7f <= ord(c) < 0xa0 for c in text)


def _ranking(hypotheses: list[str]):
    from visdiff.ranking import rank_scores

    rng = np.random.default_rng(0)
    scores_a, scores_b = rng.normal(size=(20, len(hypotheses))), rng.normal(size=(20, len(hypotheses)))
    scores_a += 3.0  # every hypothesis more true of A
    return rank_scores(scores_a, scores_b, hypotheses)


def test_display_path_escapes_control_characters_as_it_does_undecodable_bytes():
    assert display_path(HOSTILE) == SHOWN
    assert display_path(b"caf\xe9\x1b.jpg".decode("utf-8", "surrogateescape")) == "caf\\xe9\\x1b.jpg"
    assert display_path("plain/café.jpg") == "plain/café.jpg"


def test_a_skipped_file_is_named_with_its_control_characters_escaped(tmp_path, caplog):
    for i in range(2):
        make_image(tmp_path / "set" / f"img{i}.png", (200, 40, 40), noise_seed=i)
    (tmp_path / "set" / f"{HOSTILE}.jpg").write_bytes(b"not an image")
    with caplog.at_level(logging.WARNING):
        images = load_image_set(tmp_path / "set")
    assert images.skipped[0].source.endswith(f"{SHOWN}.jpg")
    assert SHOWN in caplog.text and _no_controls(caplog.text) and "\nWARNING: forged" not in caplog.text


def test_a_missing_path_of_a_list_is_named_escaped(tmp_path, caplog):
    present = [make_image(tmp_path / f"img{i}.png", (200, 40, 40), noise_seed=i) for i in range(2)]
    with caplog.at_level(logging.WARNING):
        images = load_image_set([*present, tmp_path / HOSTILE])
    assert images.skipped[0].source.endswith(SHOWN)
    assert SHOWN in caplog.text and _no_controls(caplog.text)


def test_an_error_naming_a_path_escapes_its_control_characters(tmp_path):
    result = run_cli("rank", tmp_path / HOSTILE, tmp_path, "-H", "red")
    assert result.exit_code == 2
    assert SHOWN in result.stderr and _no_controls(result.stderr)


def test_table_rows_and_errors_name_the_table_escaped(tmp_path):
    table = tmp_path / f"{HOSTILE}.csv"
    table.write_text("path,group_name\na.jpg,one\nb.jpg,two\n", encoding="utf-8")
    labels = select_rows(table, group="one").labels
    assert SHOWN in labels[0] and _no_controls(labels[0])
    with pytest.raises(InputError) as error:
        select_rows(table)
    assert SHOWN in str(error.value) and _no_controls(str(error.value))


def test_the_terminal_table_escapes_set_names_and_hypotheses(capsys, monkeypatch):
    from visdiff.cli import output

    monkeypatch.setattr(output, "stdout", Console(width=200))
    output.render_ranking(_ranking([f"hypothesis {HOSTILE}"]), title=f"A = [bold]{HOSTILE}  vs  B = b")
    shown = capsys.readouterr().out
    assert _no_controls(shown) and "\nWARNING: forged" not in shown
    assert f"hypothesis {SHOWN}" in shown and f"A = [bold]{SHOWN}" in shown


def test_a_run_over_a_hostile_folder_prints_no_control_characters(tmp_path, tiny_clip_weights, caplog):
    a, b = tmp_path / f"dogs{HOSTILE}", tmp_path / "b"
    for i in range(4):
        make_image(a / f"img{i}.png", (200, 40, 40), noise_seed=i)
        make_image(b / f"img{i}.png", (40, 40, 200), noise_seed=10 + i)
    (a / f"broken{HOSTILE}.jpg").write_bytes(b"not an image")
    with caplog.at_level(logging.WARNING):
        result = run_cli("rank", a, b, "--scorer", tiny_clip_weights, "-H", f"red {HOSTILE}")
    assert result.exit_code == 0, result.output
    for text in (result.stdout, result.stderr, caplog.text):
        assert _no_controls(text) and "\nWARNING: forged" not in text
    assert f"A = dogs{SHOWN}" in result.stdout and f"broken{SHOWN}.jpg" in caplog.text


def test_the_terminal_table_shows_an_excerpt_of_a_long_hypothesis(capsys, monkeypatch, tmp_path):
    from visdiff.cli import output

    monkeypatch.setattr(output, "stdout", Console(width=120))
    long = "a photo of " + "very " * 20_000 + "red things"
    table = _ranking([long])
    output.render_ranking(table, title="run")
    shown = capsys.readouterr().out
    assert len(shown.splitlines()) < 20 and "..." in shown and "red things" not in shown
    output.write_table(table, json_path=tmp_path / "r.json", csv_path=tmp_path / "r.csv")
    assert long in (tmp_path / "r.json").read_text() and long in (tmp_path / "r.csv").read_text()


def test_a_csv_with_two_path_columns_is_an_input_error(tmp_path, image_dirs):
    a, b = image_dirs
    table = tmp_path / "sets.csv"
    rows = [f"{a}/img{i}.png,{b}/img{i}.jpg,{g}" for i in range(6) for g in ("one", "two")]
    table.write_text("path,path,group_name\n" + "\n".join(rows) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match="'path'"):
        select_rows(table, group="one")
    result = run_cli("rank", table, table, "--group-a", "one", "--group-b", "two", "-H", "red")
    assert result.exit_code == 2 and "'path'" in result.stderr and "path.1" not in result.stderr
