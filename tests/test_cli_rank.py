"""``visdiff rank`` through tests.cli_helpers.run_cli: options, outputs and exit codes."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta
import subprocess
import sys

import pandas as pd
import pytest

import visdiff
from tests.cli_helpers import run_cli

from .conftest import make_image
from .test_io import truncated_jpeg


@pytest.fixture
def rank_args(image_dirs, tiny_clip_weights) -> list[str]:
    a, b = image_dirs
    return ["rank", str(a), str(b), "--scorer", tiny_clip_weights]


def test_rank_prints_a_table(rank_args):
    result = run_cli(*rank_args, "-H", "reddish images", "-H", "bluish images")
    assert result.exit_code == 0, result.output
    assert "reddish images" in result.stdout and "bluish images" in result.stdout
    assert "AUROC" in result.stdout


def test_a_hypotheses_file_saved_with_a_byte_order_mark(rank_args, tmp_path):
    """Windows editors start UTF-8 files with a BOM: it became part of the first hypothesis."""
    path = tmp_path / "hypotheses.txt"
    path.write_bytes("\ufefffirst idea\r\nsecond idea\r\n".encode("utf-8"))
    result = run_cli(*rank_args, "--hypotheses-file", path, "--json", "-")
    assert result.exit_code == 0, result.output
    assert sorted(r["hypothesis"] for r in json.loads(result.stdout)["results"]) == ["first idea", "second idea"]


def test_hypotheses_file_and_flags_combine(rank_args, tmp_path):
    path = tmp_path / "hypotheses.txt"
    path.write_text("first idea\n\n  second idea  \nfirst idea\n", encoding="utf-8")
    result = run_cli(*rank_args, "--hypotheses-file", path, "-H", "third idea", "--json", "-")
    assert result.exit_code == 0, result.output
    hypotheses = [r["hypothesis"] for r in json.loads(result.stdout)["results"]]
    assert sorted(hypotheses) == ["first idea", "second idea", "third idea"]


def test_json_to_stdout_is_only_json(rank_args):
    result = run_cli(*rank_args, "-H", "red", "-H", "blue", "--json", "-")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)  # no table or log lines mixed in
    assert list(payload)[:2] == ["visdiff_version", "created_at"] and payload["visdiff_version"] == visdiff.__version__
    assert datetime.fromisoformat(payload["created_at"]).utcoffset() == timedelta(0)
    assert payload["n_a"] == 6 and payload["n_b"] == 6 and payload["alpha"] == 0.05
    assert payload["scorer"].startswith("open_clip:")
    assert payload["embeddings"]["encoded"] == 12
    row = payload["results"][0]
    assert set(row) == {"hypothesis", "auroc", "auroc_low", "auroc_high", "mean_a", "mean_b", "diff", "effect_size",
                        "p_greater", "q_value", "significant", "t", "p_welch", "correct_delta", "favours", "constant"}
    assert payload["results"][0]["auroc"] >= payload["results"][1]["auroc"]


def test_json_and_csv_files(rank_args, tmp_path):
    result = run_cli(*rank_args, "-H", "red", "-H", "blue", "--json", tmp_path / "out.json", "--csv", tmp_path / "out.csv")
    assert result.exit_code == 0, result.output
    assert "red" in result.stdout  # the table is still shown
    from_json = json.loads((tmp_path / "out.json").read_text())["results"]
    from_csv = pd.read_csv(tmp_path / "out.csv")
    assert from_csv["hypothesis"].tolist() == [r["hypothesis"] for r in from_json]
    assert from_csv["auroc"].tolist() == pytest.approx([r["auroc"] for r in from_json])


def test_csv_to_stdout(rank_args):
    import io

    result = run_cli(*rank_args, "-H", "red", "--csv", "-", "--alpha", "0.1")
    assert result.exit_code == 0, result.output
    table = pd.read_csv(io.StringIO(result.stdout))
    assert table["hypothesis"].tolist() == ["red"]


def test_constant_scores_write_valid_json(tmp_path, tiny_clip_weights):
    """Identical images everywhere: every score is equal, the t-test is undefined (NaN), and
    the JSON must say null, not NaN."""
    source = make_image(tmp_path / "src.png", (100, 100, 100))
    for side in ("a", "b"):
        (tmp_path / side).mkdir()
        for i in range(2):
            shutil.copy(source, tmp_path / side / f"{i}.png")
    result = run_cli("rank", tmp_path / "a", tmp_path / "b", "--scorer", tiny_clip_weights, "-H", "grey", "--json", "-")
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout)["results"][0]  # strict parse: NaN would fail below
    assert row["auroc"] == 0.5 and row["t"] is None and row["p_greater"] == 1.0 and row["significant"] is False
    assert row["constant"] is True
    assert "NaN" not in result.stdout


def test_skipped_files_are_reported_on_stderr(rank_args, image_dirs):
    a, _ = image_dirs
    truncated_jpeg(a / "cut.jpg")
    (a / "empty.png").write_bytes(b"")
    result = run_cli(*rank_args, "-H", "red", "--json", "-")
    assert result.exit_code == 0, result.output
    assert "set A: skipped 2 file(s) that could not be used" in result.stderr
    assert json.loads(result.stdout)["n_a"] == 6


def test_no_cache_and_cache_dir(rank_args, tmp_path, isolated_cache):
    result = run_cli(*rank_args, "-H", "red", "--no-cache", "--cache-dir", tmp_path / "c", "--json", "-")
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "c").exists()
    result = run_cli(*rank_args, "-H", "red", "--cache-dir", tmp_path / "c", "--json", "-")
    assert json.loads(result.stdout)["embeddings"]["encoded"] == 12
    result = run_cli(*rank_args, "-H", "red", "--cache-dir", tmp_path / "c", "--json", "-")
    assert json.loads(result.stdout)["embeddings"] == {**json.loads(result.stdout)["embeddings"], "encoded": 0, "cached": 12}


@pytest.mark.parametrize(
    ("make_args", "message"),
    [
        (lambda a, b, t: ["rank", t / "missing", b, "-H", "x"], "no such file or folder"),
        (lambda a, b, t: ["rank", t / "empty", b, "-H", "x"], "contains no image files"),
        (lambda a, b, t: ["rank", a, b], "give hypotheses with --hypothesis/-H"),
        (lambda a, b, t: ["rank", a, b, "-H", "   "], "no hypotheses to rank"),
        (lambda a, b, t: ["rank", t / "one", b, "-H", "x"], "image set 'one' has 1 readable image"),
        (lambda a, b, t: ["rank", a, b, "-H", "x", "--alpha", "0"], "invalid value for '--alpha': must be in (0, 1), got 0.0"),
        (lambda a, b, t: ["rank", a, b, "-f", t / "latin1.txt"], "cannot read hypotheses"),
    ],
    ids=["missing-folder", "empty-folder", "no-hypotheses", "blank-hypotheses", "one-image", "alpha-0", "bad-encoding"],
)
def test_bad_input_exits_2_without_traceback(image_dirs, tiny_clip_weights, tmp_path, make_args, message):
    a, b = image_dirs
    (tmp_path / "empty").mkdir()
    make_image(tmp_path / "one" / "only.png", (1, 2, 3))
    (tmp_path / "latin1.txt").write_bytes("caf\xe9 photos\n".encode("latin-1"))
    result = run_cli(*make_args(a, b, tmp_path), "--scorer", tiny_clip_weights)
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert "Traceback" not in result.output
    assert result.stdout == ""


def test_usage_errors_exit_2(rank_args):
    assert run_cli(*rank_args, "-H", "x", "--alpha", "1.5").exit_code == 2
    assert run_cli(*rank_args, "-H", "x", "--batch-size", "0").exit_code == 2
    assert run_cli("rank").exit_code == 2


def test_unknown_scorer_exits_2(image_dirs):
    a, b = image_dirs
    result = run_cli("rank", a, b, "-H", "x", "--scorer", "nosuch:model")
    assert result.exit_code == 2
    assert "unknown scorer backend 'nosuch'" in result.stderr and "open_clip" in result.stderr
    result = run_cli("rank", a, b, "-H", "x", "--clip", "NoSuchNet:openai")
    assert result.exit_code == 2 and "unknown open_clip architecture 'NoSuchNet'" in result.stderr


def test_python_dash_m_entry_point(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "visdiff", "rank", str(tmp_path / "nope"), str(tmp_path), "-H", "x"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2
    assert "no such file or folder" in result.stderr and "Traceback" not in result.stderr


def test_error_messages_keep_brackets_and_long_paths_intact(image_dirs, tiny_clip_weights, tmp_path):
    a, b = image_dirs
    deep = tmp_path / ("a-rather-long-folder-name-" * 4) / "pairs.csv"
    deep.parent.mkdir()
    deep.write_text("path,group_name\nx.png,cats\ny.png,dogs\n", encoding="utf-8")
    result = run_cli("rank", deep, b, "-H", "x", "--scorer", tiny_clip_weights)
    assert result.exit_code == 2
    assert f"{deep} has groups ['cats', 'dogs']; choose one (group= in Python, --group-a/--group-b" in result.stderr


def test_one_csv_for_both_sets_with_groups(tmp_path, tiny_clip_weights):
    rows = ["path,group_name"]
    for i in range(3):
        make_image(tmp_path / "imgs" / f"r{i}.png", (200, 20, 20), noise_seed=i)
        make_image(tmp_path / "imgs" / f"b{i}.png", (20, 20, 200), noise_seed=10 + i)
        rows += [f"imgs/r{i}.png,red", f"imgs/b{i}.png,blue"]
    (tmp_path / "pairs.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    csv_path = tmp_path / "pairs.csv"
    result = run_cli("rank", csv_path, csv_path, "--group-a", "red", "--group-b", "blue",
                    "-H", "red", "--scorer", tiny_clip_weights, "--json", "-")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert (payload["n_a"], payload["n_b"]) == (3, 3)
    result = run_cli("rank", csv_path, csv_path, "--group-a", "green", "-H", "x", "--scorer", tiny_clip_weights)
    assert result.exit_code == 2 and "has no group 'green'" in result.stderr


def test_unwritable_output_path_exits_2(rank_args, tmp_path):
    result = run_cli(*rank_args, "-H", "x", "--json", tmp_path / "no" / "such" / "dir" / "out.json")
    assert result.exit_code == 2
    assert "cannot write output file" in result.stderr and "Traceback" not in result.output
