"""Values that ran silently as something else (issue #25): empty options, LLM request options
with a proposer that sends no LLM requests, the bench judge's options, and two sets of one
name. Each is a usage error (exit 2, one line naming the option) before any model or image."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tests.cli_helpers import run_cli
from tests.conftest import make_image
from visdiff.errors import InputError
from visdiff.options import RunOptions

MINIBENCH = Path(__file__).parent / "data" / "minibench"


def assert_usage_error(result, message: str) -> None:
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.stderr.split()), result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize("flag", ["--captioner", "--proposer", "--scorer", "--llm", "--prompts", "--cache-dir",
                                  "--name-a", "--name-b", "--goal"])
def test_empty_option_is_a_usage_error(image_dirs, flag):
    a, b = image_dirs
    result = run_cli("compare", a, b, "--profile", "offline", flag, "")
    assert_usage_error(result, f"invalid value for '{flag}': must be a non-empty")


@pytest.mark.parametrize("field", ["captioner", "proposer", "scorer", "llm", "prompts", "cache_dir", "name_a", "name_b",
                                   "goal"])
def test_empty_run_option_is_refused_by_the_api(field):
    with pytest.raises(InputError, match=f"{field} must be a non-empty"):
        RunOptions(**{field: " "})


def test_empty_system_message_still_means_send_none():
    assert RunOptions(llm="gpt-4o", system_message="").chat_settings()["system_message"] == ""


@pytest.mark.parametrize("args, flag", [
    (["--temperature", "0.2"], "--temperature"),
    (["--max-tokens", "100"], "--max-tokens"),
    (["--system-message", "Be brief."], "--system-message"),
    (["--llm-seed"], "--llm-seed"),
])
def test_llm_request_option_without_llm_is_a_usage_error(image_dirs, args, flag):
    a, b = image_dirs
    result = run_cli("compare", a, b, "--profile", "offline", *args)
    assert_usage_error(result, f"{flag} ({flag[2:].replace('-', '_')}=) sets the requests of an LLM proposer; "
                               f"the proposer 'vocabulary' sends none: give --llm MODEL")


def test_llm_request_options_with_a_chat_proposer_are_kept():
    options = RunOptions(llm="gpt-4o", temperature=0.2, max_tokens=100, llm_seed=False)
    assert options.chat_settings()["temperature"] == 0.2


@pytest.mark.parametrize("args, message", [
    (["--judge", "llm"], "--judge llm needs --judge-llm MODEL"),
    (["--judge", "llm", "--judge-llm", ""], "--judge llm needs --judge-llm MODEL"),
    (["--judge-base-url", "file:///etc"], "--judge-base-url: base URL 'file:///etc' is not an http(s) URL"),
    (["--out", ""], "--out is empty"),
])
def test_bench_judge_and_out_are_checked_up_front(tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)  # a run that went on would write here
    assert_usage_error(run_cli("bench", MINIBENCH, *args), message)
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def music_table(tmp_path) -> Path:
    rows = []
    for group, colour in (("music", (200, 40, 40)), ("sport", (40, 40, 200))):
        for i in range(3):
            path = make_image(tmp_path / group / f"{i}.png", colour, noise_seed=i)
            rows.append({"path": str(path), "group_name": group})
    table = tmp_path / "t.csv"
    pd.DataFrame(rows).to_csv(table, index=False)
    return table


@pytest.mark.parametrize("groups", [["--group", "music", "--group", "music"],
                                    ["--group-a", "music", "--group-b", "music"]])
def test_two_sets_of_one_name_are_a_usage_error(music_table, groups):
    result = run_cli("compare", music_table, *groups, "--profile", "offline")
    assert_usage_error(result, "t.csv: group_name=music' is given more than once")


@pytest.mark.parametrize("command", ["compare", "sweep"])
def test_an_empty_out_of_compare_and_sweep_is_a_usage_error(image_dirs, music_table, tmp_path, monkeypatch, command):
    monkeypatch.chdir(tmp_path)  # a path option read '' as '.': the results landed here
    args = (image_dirs if command == "compare" else
            [music_table, "--by", "group_name", "--group-a", "x", "--group-b", "y"])
    assert_usage_error(run_cli(command, *args, "--out", ""), "--out is empty")
    assert not any(tmp_path.glob("*.json")) and not any(tmp_path.glob("*.html"))


@pytest.mark.parametrize("command", [["info"], ["compact"], ["clear", "--yes"]])
def test_a_cache_dir_that_is_a_file_is_a_usage_error_for_cache_commands_too(tmp_path, command):
    not_a_folder = tmp_path / "notes.txt"
    not_a_folder.write_text("kept")
    # `cache info` said "nothing cached" with exit 0 where compare said the cache dir cannot be used.
    assert_usage_error(run_cli("cache", *command, "--cache-dir", not_a_folder), "is not a folder")
    assert not_a_folder.read_text() == "kept"


@pytest.mark.parametrize("address", ["not a url!!", "http://head:8265/x", ""])
def test_a_malformed_ray_address_is_refused_before_any_image_is_read(image_dirs, address):
    # It was "unexpected ValueError" from ray.init, exit 1, after the sets were read.
    a, _ = image_dirs
    result = run_cli("embed", a, "--engine", "ray", "--address", address)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and "unexpected" not in result.output


@pytest.mark.parametrize("command", [["info"], ["compact"], ["clear", "--yes"]])
def test_a_bad_value_of_a_cache_command_points_to_its_own_help(command):
    # The hint said 'visdiff info --help', a command that does not exist.
    assert_usage_error(run_cli("cache", *command, "--cache-dir", ""), f"(see 'visdiff cache {command[0]} --help')")
