"""Every bad input, failing service and interrupt a careless user can cause: one line, the
right exit code (2 usage/input, 1 model/service/system, 130 interrupted), never a traceback,
never garbage in the results. Table-driven, so each case stays fixed.

Read-only folders are tested in a capability-free subprocess (``setpriv --bounding-set=-all``):
as root, ``chmod`` alone would not stop a write.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from filelock import FileLock
from PIL import Image

import visdiff
from tests.cli_helpers import run_cli
from tests.fake_openai import FakeOpenAIServer, Reply
from visdiff.embeddings.cache import EmbeddingCache
from visdiff.errors import BackendError
from visdiff.sources import load_image_set
from visdiff.sources.folder import list_image_files

from .conftest import make_image

pytest_plugins = ["tests.fake_openai"]

REPO = Path(__file__).resolve().parents[1]
MINIBENCH = REPO / "tests" / "data" / "minibench"


def run_process(*args, env: dict | None = None, without_capabilities: bool = False, stdout=subprocess.PIPE,
            timeout: float = 300, input: str | None = None) -> subprocess.CompletedProcess:
    """``python -m visdiff ARGS`` in a fresh process (optionally as root without capabilities,
    so file permissions bind), with ``input`` on its standard input."""
    command = [sys.executable, "-m", "visdiff", *map(str, args)]
    if without_capabilities:
        command = ["setpriv", "--bounding-set=-all", "--", *command]
    return subprocess.run(command, stdout=stdout, stderr=subprocess.PIPE, text=True, timeout=timeout, input=input,
                          env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})}, cwd=REPO)


def run_python(code: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """``python -c CODE`` in a fresh process that imports visdiff from this checkout."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, cwd=REPO)


def assert_one_line_error(result, code: int, message: str) -> None:
    output = result.output if hasattr(result, "output") else result.stderr
    code_seen = result.exit_code if hasattr(result, "exit_code") else result.returncode
    assert code_seen == code, output
    assert message in output, output
    assert "Traceback" not in output


# --- usage and input errors: exit 2 before any work -------------------------------------------


def _no_gpu_device() -> str:
    return "cuda:99" if torch.cuda.is_available() else "cuda"


USAGE_CASES = [
    ("unknown scorer backend", ["--scorer", "foo:bar"], "unknown scorer backend 'foo'"),
    ("unknown open_clip arch", ["--clip", "NoSuchArch:x"], "unknown open_clip architecture 'NoSuchArch'"),
    ("unknown proposer", ["--proposer", "magic"], "unknown proposer backend 'magic'"),
    ("unknown captioner, unused", ["--captioner", "nope:x"], "unknown captioner backend 'nope'"),
    ("base URL not a URL", ["--llm", "m", "--base-url", "not a url"], "is not an http(s) URL"),
    ("device that does not exist", ["--device", "tpu"], "device 'tpu'"),
    ("GPU device on a machine without", ["--device", _no_gpu_device()], "not available on this machine"),
    ("cache dir below a file", ["--cache-dir", "{file}/sub"], "exists and is not a folder"),
    ("cache dir is a device", ["--cache-dir", "/dev/null"], "exists and is not a folder"),
    ("json into a missing folder", ["--json", "/no/such/dir/x.json"], "folder /no/such/dir does not exist"),
    ("json and csv both on stdout", ["--json", "-", "--csv", "-"], "only one output can go to standard output"),
    ("unknown precision", ["--precision", "fp64"], "unknown precision 'fp64'; choose one of: auto, fp32, fp16, bf16"),
    ("unknown ranker mode", ["--ranker-mode", "sideways"], "unknown ranker mode 'sideways'; choose one of: visdiff"),
]


def no_image_may_be_read(*args, **kwargs):
    raise RuntimeError("an image set was read before the usage error")


def no_embedding(*args, **kwargs):
    raise RuntimeError("images were embedded before the error was said")


@pytest.mark.parametrize("args", [c[1] for c in USAGE_CASES], ids=[c[0] for c in USAGE_CASES])
@pytest.mark.parametrize("command", ["compare", "propose", "rank"])
def test_usage_errors_exit_2_before_any_work(command, args, image_dirs, tmp_path, monkeypatch):
    # A large folder takes minutes to hash: a misspelt model must not wait for it.
    monkeypatch.setattr("visdiff.cli.options.load_image_set", no_image_may_be_read)
    if command == "rank" and args[0] in ("--captioner", "--proposer", "--llm"):
        pytest.skip(f"rank takes no {args[0]}")
    if command == "propose" and "--csv" in args:
        pytest.skip("propose takes no --csv")
    message = dict((tuple(c[1]), c[2]) for c in USAGE_CASES)[tuple(args)]
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    args = [arg.replace("{file}", str(a_file)) for arg in args]
    hypotheses = ["-H", "x"] if command == "rank" else []
    result = run_cli(command, *image_dirs, *hypotheses, *args)
    assert_one_line_error(result, 2, message)


@pytest.mark.parametrize("args, message", [
    (["compare", "{a}", "{b}", "--alpha", "2"],
     "error: invalid value for '--alpha': must be in (0, 1), got 2.0 (see 'visdiff compare --help')"),
    (["compare", "{a}", "{b}", "--zzzz"], "error: no such option: --zzzz (see 'visdiff compare --help')"),
    (["comapre", "{a}"], "error: no such command 'comapre'. Did you mean 'compare'? (see 'visdiff --help')"),
    (["rank"], "error: missing argument 'set_a' (see 'visdiff rank --help')"),
])
def test_command_line_errors_take_one_line_naming_the_value(args, message, image_dirs):
    """Errors typer finds in the command line itself went through its own path: a four-line
    box that did not name the refused value."""
    result = run_cli(*[{"{a}": image_dirs[0], "{b}": image_dirs[1]}.get(arg, arg) for arg in args])
    assert (result.exit_code, result.stdout, result.stderr) == (2, "", message + "\n")


def test_a_confirmation_at_the_end_of_input_deletes_nothing(tmp_path):
    """typer aborts a confirmation when standard input ends; run not standalone, its Abort
    reaches the entry point, which says so in one line."""
    kept = tmp_path / "cache" / "kept.txt"
    kept.parent.mkdir()
    kept.write_text("x")
    result = run_cli("cache", "clear", "--cache-dir", kept.parent, input="")
    assert (result.exit_code, result.stderr) == (1, "error: aborted: standard input ended\n") and kept.exists()


def test_the_process_ends_as_the_interpreter_would_without_its_teardown(tmp_path):
    """The entry point skips the interpreter's teardown (0.6 s of a 2.9 s `visdiff compare`
    of the example sets, for nothing), but first does what exiting does: other threads are
    joined, exit handlers run, output is flushed."""
    marker = tmp_path / "written by a thread"
    code = ("import atexit, sys, threading, time; "
            "atexit.register(lambda: print('exit handler ran')); "
            f"threading.Thread(target=lambda: (time.sleep(0.5), open({str(marker)!r}, 'w').write('x'))).start(); "
            "sys.argv = ['visdiff', '--version']; from visdiff.entry import main; main()")
    done = run_python(code)
    assert (done.returncode, done.stdout, done.stderr) == (0, f"visdiff {visdiff.__version__}\nexit handler ran\n", "")
    assert marker.read_text() == "x"


def test_a_command_without_arguments_shows_its_help():
    result = run_cli("cache")
    assert result.exit_code == 2 and "Usage: visdiff cache" in result.stdout and result.stderr == ""


def test_a_missing_set_is_said_before_the_stages_are_built(image_dirs, monkeypatch):
    def no_stages(*args, **kwargs):
        raise RuntimeError("the run's stages were built before the missing set was said")

    monkeypatch.setattr("visdiff.stages.RunStages", no_stages)
    assert_one_line_error(run_cli("compare", image_dirs[0], "no/such/folder"), 2, "no such file or folder: no/such/folder")


@pytest.mark.parametrize("args, message", [
    (["{a}", "--json", "/no/such/dir/x.json"], "cannot write output file /no/such/dir/x.json: folder /no/such/dir does not exist"),
    (["{a}", "no/such/folder"], "no such file or folder: no/such/folder"),
])
def test_embed_checks_its_output_and_sets_before_embedding(args, message, image_dirs, monkeypatch):
    monkeypatch.setattr("visdiff.pipeline.embed", no_embedding)
    result = run_cli("embed", *[str(image_dirs[0]) if arg == "{a}" else arg for arg in args])
    assert_one_line_error(result, 2, message)  # the JSON file was written only after every image was embedded


def test_help_and_usage_errors_start_without_torch_or_scipy():
    # torch takes over a second to import and scipy.stats 0.4 s: `visdiff --help` took 3.3 s.
    code = ("import sys; from typer.testing import CliRunner; from visdiff.cli import app; "
            "CliRunner().invoke(app, ['--help']); CliRunner().invoke(app, ['compare', '--help']); "
            "heavy = [m for m in ('torch', 'scipy', 'open_clip', 'transformers') if m in sys.modules]; "
            "assert not heavy, heavy")
    done = run_python(code, timeout=300)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("call, message", [
    (lambda a, b: visdiff.rank(["x"], a, b, scorer=123),
     "scorer= takes a spec string or a built scorer (with spec, cache_id, score or score_pairs); int has no spec"),
    (lambda a, b: visdiff.compare(a, b, captioner=object()), "captioner= takes a spec string or a built captioner"),
    (lambda a, b: visdiff.compare(a, b, proposer=5), "int has no spec, propose, describe"),
    (lambda a, b: visdiff.rank(5, a, b), "hypotheses must be a list of strings, got int"),
    (lambda a, b: visdiff.compare(a, b, seed="x"), "seed must be a whole number >= 0, got 'x'"),
    (lambda a, b: visdiff.compare(a, b, {"seed": 1}), "options must be a RunOptions (or give its fields as keywords), got dict"),
    (lambda a, b: visdiff.rank(["x"], a, 5), "cannot use int as an image set"),
    (lambda a, b: visdiff.compare(a, b, both_directions="no"), "both_directions must be True or False, got 'no'"),
    (lambda a, b: visdiff.rank(["x"], a, b, show_progress="off"), "show_progress must be True, False or None, got 'off'"),
    (lambda a, b: visdiff.rank(["x"], a, b, cache_dir=3), "cache_dir must be a folder path, got 3"),
    (lambda a, b: visdiff.compare(a, b, llm=4), "llm must be a string, got 4"),
], ids=["scorer int", "captioner object", "proposer int", "hypotheses int", "seed str", "options dict", "set int",
        "flag str", "progress str", "cache dir int", "llm int"])
def test_python_api_refuses_wrong_types_naming_them(call, message, image_dirs):
    # They ended in AttributeError ('int' object has no attribute 'cache_id'), TypeError, or a
    # string seed was taken; a string flag was true whatever it said (both_directions="no").
    with pytest.raises(visdiff.InputError) as raised:
        call(*image_dirs)
    assert message in str(raised.value)


def test_version_is_printed_and_is_the_installed_one():
    from importlib.metadata import version

    result = run_cli("--version")
    assert result.exit_code == 0 and result.output == f"visdiff {visdiff.__version__}\n"
    assert version("visdiff") == visdiff.__version__


def test_misspelt_models_fail_before_any_image_is_read(image_dirs, monkeypatch):
    for module in ("visdiff.cli.caption", "visdiff.cli.options", "visdiff.comparison", "visdiff.multi", "visdiff.pipeline"):
        monkeypatch.setattr(f"{module}.load_image_set", no_image_may_be_read)
    assert_one_line_error(run_cli("rank", *image_dirs, "-H", " ", "-H", ""), 2, "no hypotheses to rank")
    assert_one_line_error(run_cli("caption", image_dirs[0], "--captioner", "nope:x"), 2, "unknown captioner backend 'nope'")
    with pytest.raises(visdiff.InputError, match="unknown open_clip architecture 'NoSuchArch'"):
        visdiff.rank(["x"], *image_dirs, scorer="open_clip:NoSuchArch:x")
    with pytest.raises(visdiff.InputError, match="unknown pretrained tag 'nope' for open_clip ViT-B-32"):
        visdiff.embed(list(image_dirs), scorer="open_clip:ViT-B-32:nope")
    with pytest.raises(visdiff.InputError, match="unknown open_clip architecture 'NoSuchArch'"):
        visdiff.propose(*image_dirs, scorer="open_clip:NoSuchArch:x")
    with pytest.raises(visdiff.InputError, match="unknown open_clip architecture 'NoSuchArch'"):
        visdiff.compare_many([*image_dirs, image_dirs[0]], scorer="open_clip:NoSuchArch:x")


IGNORED_VALUE_CASES = [
    ("--captioner with a proposer that reads no captions", ["compare", "{a}", "{b}", "--captioner", "offline"],
     "--captioner 'offline' would not be used: the proposer 'vocabulary' reads no captions"),
    ("--captioner of a bench with that proposer", ["bench", MINIBENCH, "--captioner", "offline", "--out", "{out}"],
     "would not be used"),
    ("--rounds with a proposer that samples nothing", ["compare", "{a}", "{b}", "--rounds", "5"],
     "--rounds 5 (rounds=) sets how a proposer samples; the proposer 'vocabulary' takes no sample"),
    ("--samples of a bench with that proposer", ["bench", MINIBENCH, "--samples", "7", "--out", "{out}"],
     "--samples 7 (samples_per_set=) sets how a proposer samples"),
    ("--goal with a proposer that sends no LLM request", ["compare", "{a}", "{b}", "--goal", "why A?"],
     "--goal (goal=) sets the requests of an LLM proposer; the proposer 'vocabulary' sends none"),
    ("--ranker-mode reference with a scorer of embeddings", ["rank", "{a}", "{b}", "-H", "x", "--ranker-mode",
     "reference"], "--ranker-mode reference (ranker_mode=) applies to the caption-llm/vqa scorers; the scorer 'offline'"),
    ("--precision with a scorer that has no precision", ["rank", "{a}", "{b}", "-H", "x", "--precision", "fp16"],
     "--precision fp16 (precision=) applies to the open_clip scorers; the scorer 'offline' takes none"),
    ("--full-decode with a pairwise scorer", ["rank", "{a}", "{b}", "-H", "x", "--full-decode", "--scorer",
     "vqa:openai:m"], "--full-decode (full_decode=) applies to scorers of embeddings"),
    ("--where on a folder", ["compare", "{a}", "{b}", "--where", "x=y"], "selects rows of a table"),
    ("--group-a on a folder", ["rank", "{a}", "{b}", "-H", "x", "--group-a", "g"], "selects rows of a table"),
    ("--group on a folder", ["caption", "{a}", "--group", "g"], "selects rows of a table"),
    ("judge prompt with the offline judge", ["bench", MINIBENCH, "--judge-prompt", "/no/such.txt", "--out", "{out}"],
     "--judge-prompt applies to the llm judge"),
    ("judge model with the offline judge", ["bench", MINIBENCH, "--judge-llm", "gpt-4o", "--out", "{out}"],
     "--judge-llm applies to the llm judge"),
]


@pytest.mark.parametrize("args, message", [c[1:] for c in IGNORED_VALUE_CASES], ids=[c[0] for c in IGNORED_VALUE_CASES])
def test_values_that_would_be_ignored_are_usage_errors(args, message, image_dirs, tmp_path):
    fill = {"{a}": str(image_dirs[0]), "{b}": str(image_dirs[1]), "{out}": str(tmp_path / "out")}
    result = run_cli(*[fill.get(str(arg), arg) for arg in args])
    assert_one_line_error(result, 2, message)
    assert not (tmp_path / "out" / "results.jsonl").exists()


# --- system failures: exit 1 naming the file ----------------------------------------------------


@pytest.mark.parametrize("option", ["--json", "--csv"])
def test_output_file_on_a_full_disk_exits_1_naming_it(option, image_dirs):
    result = run_cli("rank", *image_dirs, "-H", "x", option, "/dev/full")
    assert_one_line_error(result, 1, "/dev/full: No space left on device")


def test_stdout_on_a_full_disk_exits_1():
    with open("/dev/full", "w") as full:
        result = run_process("rank", REPO / "examples" / "a", REPO / "examples" / "b", "-H", "music", stdout=full)
    assert result.returncode == 1 and "No space left on device" in result.stderr
    assert "Traceback" not in result.stderr and "Exception ignored" not in result.stderr


def test_results_folder_on_a_full_disk_exits_1_naming_the_file(image_dirs, tmp_path, full_disk):
    out = tmp_path / "out"
    full_disk(out)
    result = run_cli("compare", *image_dirs, "--no-cache", "--out", out, "-q")
    assert_one_line_error(result, 1, f"{out / 'results.json'}: No space left on device")


def test_embedding_cache_on_a_full_disk_exits_1_naming_the_shard(image_dirs, tmp_path, full_disk):
    cache = tmp_path / "cache"
    full_disk(cache / "embeddings")
    result = run_cli("embed", *image_dirs, "--cache-dir", cache, "-q")
    assert_one_line_error(result, 1, ": No space left on device")
    assert f"{cache / 'embeddings'}" in result.stderr and ".npy" in result.stderr


def test_read_only_cache_dir_exits_2_at_once(image_dirs, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    cache.chmod(0o555)
    result = run_process("rank", *image_dirs, "-H", "x", "--cache-dir", cache, without_capabilities=True)
    assert result.returncode == 2, result.stderr
    assert f"cache dir {cache}: {cache} is not writable" in result.stderr and "Traceback" not in result.stderr


def test_clearing_a_read_only_cache_exits_1_naming_the_file(tmp_path):
    cache = tmp_path / "cache"
    EmbeddingCache(cache, "s").add(["0" * 64], np.zeros((1, 2), np.float16))
    for folder in (cache, cache / "embeddings"):
        folder.chmod(0o555)
    result = run_process("cache", "clear", "-y", "--cache-dir", cache, without_capabilities=True)
    assert result.returncode == 1 and "Permission denied" in result.stderr and str(cache) in result.stderr
    assert "Traceback" not in result.stderr


def test_csv_into_a_read_only_folder_exits_2_at_once(image_dirs, tmp_path):
    folder = tmp_path / "readonly"
    folder.mkdir()
    folder.chmod(0o555)
    result = run_process("rank", *image_dirs, "-H", "x", "--no-cache", "--csv", folder / "out.csv",
                     without_capabilities=True)
    assert result.returncode == 2 and "is not writable" in result.stderr and "Traceback" not in result.stderr


def test_locked_sub_folder_is_reported(image_dirs, tmp_path):
    a, b = image_dirs
    locked = a / "locked"
    make_image(locked / "hidden.png", (1, 2, 3))
    locked.chmod(0o000)
    result = run_process("rank", a, b, "-H", "x", "--no-cache", "--json", "-", without_capabilities=True)
    locked.chmod(0o755)
    assert result.returncode == 0, result.stderr
    assert "cannot read 1 sub-folder(s)" in result.stderr
    skipped = json.loads(result.stdout)["skipped_a"]
    assert [(s["source"], s["reason"]) for s in skipped] == [(str(locked), "cannot read folder (Permission denied)")]


# --- interrupts ------------------------------------------------------------------------------------


def test_ctrl_c_while_starting_exits_130_without_a_traceback(image_dirs):
    process = subprocess.Popen([sys.executable, "-m", "visdiff", "compare", *map(str, image_dirs)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
                               env={**os.environ, "PYTHONPATH": str(REPO)})
    time.sleep(0.3)  # still importing torch
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr


def test_ctrl_c_inside_an_import_exits_130_at_once(tmp_path):
    """An interrupt raised inside an extension's initialisation (torch's, through pybind11)
    aborted the process or ended it by the signal; here a module stands in for one, aborting
    as std::terminate does when a KeyboardInterrupt reaches it."""
    (tmp_path / "extension_like.py").write_text(
        "import os, signal, time\n"
        "try:\n"
        "    os.kill(os.getpid(), signal.SIGINT)\n"
        "    time.sleep(30)\n"
        "except KeyboardInterrupt:\n"
        "    os.abort()\n")
    code = ("import signal, sys; from visdiff.entry import _on_interrupt; "
            f"signal.signal(signal.SIGINT, _on_interrupt); sys.path.insert(0, {str(tmp_path)!r}); import extension_like")
    done = run_python(code)
    assert (done.returncode, done.stderr) == (130, "error: interrupted\n")




@pytest.fixture
def no_llm_credentials(monkeypatch):
    """Neither an API key nor a base URL in the environment."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


@pytest.mark.usefixtures("no_llm_credentials")
@pytest.mark.parametrize("command", ["compare", "propose"])
def test_a_missing_api_key_is_said_before_any_image_is_read(command, image_dirs, monkeypatch):
    """The proposer was built on first use: with no key, every image was embedded (and, with
    an LLM proposer, captioned) before the run failed."""
    monkeypatch.setattr("visdiff.cli.options.load_image_set", no_image_may_be_read)
    assert_one_line_error(run_cli(command, *image_dirs, "--llm", "gpt-4o"), 1, "no API key for 'gpt-4o'")


@pytest.mark.usefixtures("no_llm_credentials")
def test_the_api_checks_the_api_key_before_embedding(image_dirs, monkeypatch):
    monkeypatch.setattr("visdiff.embeddings.scoring.Scoring.embed_sets", no_embedding)
    for call in (visdiff.compare, visdiff.propose, lambda a, b, **kw: visdiff.compare_many([a, b, a], **kw)):
        with pytest.raises(BackendError, match="no API key for 'gpt-4o'"):
            call(*image_dirs, llm="gpt-4o")


@pytest.mark.usefixtures("no_llm_credentials")
def test_ranking_with_a_profile_that_names_an_llm_needs_no_key(image_dirs):
    options = visdiff.RunOptions(llm="gpt-4o", show_progress=False)
    assert len(visdiff.rank(["red"], *image_dirs, options)) == 1  # rank proposes nothing


# --- failing LLM endpoints --------------------------------------------------------------------------

ENDPOINT_CASES = [
    ("HTML page with HTTP 200", Reply(raw_body="<html><body>Please log in</body></html>", content_type="text/html"),
     "the answer is not a chat completion"),
    ("cut-off JSON", Reply(raw_body='{"id": "x", "choices": [{"message": {"content": "cut', ), "sent a malformed response"),
    ("JSON that is no completion", Reply(raw_body='{"detail": "not found"}'), "the answer is not a chat completion"),
]


@pytest.mark.parametrize("reply, message", [c[1:] for c in ENDPOINT_CASES], ids=[c[0] for c in ENDPOINT_CASES])
def test_faulty_llm_endpoint_exits_1_naming_it(reply, message, image_dirs):
    with FakeOpenAIServer(respond=lambda request: reply) as server:
        result = run_cli("propose", *image_dirs, "--llm", "m", "--base-url", server.base_url, "--rounds", "1",
                        "--no-cache")
    assert_one_line_error(result, 1, message)
    assert f"LLM 'm' at {server.base_url}" in result.output


def test_error_text_from_the_llm_never_becomes_a_hypothesis(image_dirs, fake_openai):
    fake_openai.respond = lambda request: Reply("1. reddish images\n2. noisy images\n3. bright images\n"
                                                "4. Error: rate limit exceeded\n<p>Hope this helps!</p>")
    result = visdiff.compare(*image_dirs, llm="m", base_url=fake_openai.base_url, rounds=1, use_cache=False,
                             show_progress=False)
    assert sorted(result.table["hypothesis"]) == ["bright images", "noisy images", "reddish images"]


def test_credentials_in_the_base_url_are_never_recorded(image_dirs, fake_openai, tmp_path):
    fake_openai.respond = lambda request: Reply("- reddish images\n- noisy images")
    url = fake_openai.base_url.replace("http://", "http://user:sk-SECRET-KEY@")
    result = run_cli("compare", *image_dirs, "--llm", "m", "--base-url", url, "--rounds", "1", "--out", tmp_path / "out",
                    "--json", tmp_path / "out.json")
    assert result.exit_code == 0, result.output
    for path in [tmp_path / "out" / "report.html", tmp_path / "out" / "results.json", tmp_path / "out.json"]:
        text = path.read_text()
        assert "sk-SECRET-KEY" not in text and "<redacted>@127.0.0.1" in text.replace("&lt;redacted&gt;", "<redacted>")


# --- output that must not be lost, duplicated or unsafe ------------------------------------------


def test_file_name_that_is_not_utf8_is_written_escaped(image_dirs, tmp_path):
    a, b = image_dirs
    with open(os.path.join(os.fsencode(a), b"caf\xe9.png"), "wb") as f:
        Image.new("RGB", (48, 40), (250, 30, 30)).save(f, format="PNG")
    result = run_cli("compare", a, b, "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    sources = [i["source"] for i in json.loads((tmp_path / "out" / "results.json").read_text())["sets"]["a"]["images"]]
    assert str(a / "caf\\xe9.png") in sources
    assert "caf\\xe9.png" in (tmp_path / "out" / "report.html").read_text()


def test_second_bench_into_the_same_folder_is_refused(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    with FileLock(out / ".lock"):
        result = run_cli("bench", MINIBENCH, "--out", out)
    assert_one_line_error(result, 2, "another visdiff bench is writing to")
    assert not (out / "results.jsonl").exists()


@pytest.mark.parametrize("args, message", [
    (["--scorer", "nosuch"], "unknown scorer backend 'nosuch'"),
    (["--clip", "ViT-B-32:nope"], "unknown pretrained tag 'nope' for open_clip ViT-B-32"),
])
def test_bench_with_a_misspelt_model_writes_nothing(args, message, tmp_path):
    out = tmp_path / "out"
    assert_one_line_error(run_cli("bench", MINIBENCH, *args, "--out", out), 2, message)
    assert not out.exists()  # its run.json would refuse the corrected rerun ("results of other settings")


def test_spreadsheet_formulas_in_hypotheses_are_defused(image_dirs, tmp_path):
    result = run_cli("rank", *image_dirs, "-H", "=HYPERLINK(\"http://x\")", "-H", "@SUM(A1)", "-H", "+1", "-H", "-1",
                    "--csv", tmp_path / "out.csv")
    assert result.exit_code == 0, result.output
    cells = [line.split(",")[0] for line in (tmp_path / "out.csv").read_text().splitlines()[1:]]
    assert cells and all(cell.lstrip('"').startswith("'") for cell in cells)


# --- noise ---------------------------------------------------------------------------------------


def _corrupt_tiff(path: Path) -> None:
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)).save(
        path, compression="tiff_adobe_deflate")
    data = bytearray(path.read_bytes())
    data[len(data) // 2: len(data) // 2 + 200] = bytes(200)
    path.write_bytes(bytes(data))


def test_quiet_is_quiet_even_for_corrupt_tiffs_and_model_loading(image_dirs):
    a, b = image_dirs
    _corrupt_tiff(a / "corrupt.tif")
    result = run_process("rank", a, b, "-H", "a red thing", "-q", "--no-cache", "--json", "-")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # no PIL warning, no libtiff line, no "Loading weights" bar
    assert [s["reason"] for s in json.loads(result.stdout)["skipped_a"]] == ["unreadable image (decoder error -2)"]


def test_caption_reports_a_skipped_file_once(image_dirs, caplog):
    a, _ = image_dirs
    (a / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    with caplog.at_level(logging.WARNING):
        result = run_cli("caption", a)
    assert result.exit_code == 0, result.output
    assert (result.output + caplog.text).count("broken.png") == 1


def test_hub_retries_are_logged_once():
    code = ("from visdiff.cli import setup_logging; setup_logging(); "
            "from huggingface_hub.utils import logging; logging.get_logger('huggingface_hub.x').warning('retry 1/5')")
    result = run_python(code)
    assert result.stderr.count("retry 1/5") == 1, result.stderr


@pytest.fixture
def hub_unreachable(monkeypatch) -> str:
    """The Hugging Face hub's endpoint is a local port that refuses connections (and the
    process is not in offline mode)."""
    from huggingface_hub import constants

    from visdiff.hub import unreachable_reason

    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        endpoint = f"http://127.0.0.1:{unused.getsockname()[1]}"
    monkeypatch.setattr(constants, "ENDPOINT", endpoint)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    unreachable_reason.cache_clear()
    yield endpoint
    unreachable_reason.cache_clear()


@pytest.mark.parametrize("args, model", [
    (["rank", "-H", "x", "--clip", "ViT-B-32:laion2b_s34b_b79k"], "open_clip model 'open_clip:ViT-B-32:laion2b_s34b_b79k'"),
    (["compare", "--captioner", "blip2:Salesforce/blip2-opt-2.7b", "--proposer", "llm", "--llm", "m",
      "--base-url", "http://127.0.0.1:9/v1"], "blip2 model 'Salesforce/blip2-opt-2.7b'"),
])
def test_an_unreachable_hub_is_said_once_with_the_offline_ways(args, model, image_dirs, hub_unreachable, caplog):
    with caplog.at_level(logging.WARNING):
        result = run_cli(args[0], *image_dirs, *args[1:], "--no-cache")
    assert_one_line_error(result, 1, f"cannot load {model}: the Hugging Face hub at {hub_unreachable} cannot be "
                                     "reached (Connection refused)")
    assert "HF_HUB_OFFLINE=1" in result.stderr and "open_clip:ARCH:/path/to/weights" in result.stderr
    assert "Retry" not in result.output + caplog.text and "Failed to download" not in caplog.text
    from huggingface_hub import constants

    assert not constants.HF_HUB_OFFLINE  # offline for that load only


def test_with_hf_hub_offline_set_a_missing_model_says_so_once(image_dirs, monkeypatch, caplog):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    result = run_cli("rank", *image_dirs, "-H", "x", "--clip", "ViT-B-32:laion2b_s34b_b79k", "--no-cache")
    assert_one_line_error(result, 1, "cannot load open_clip model 'open_clip:ViT-B-32:laion2b_s34b_b79k': "
                                     "HF_HUB_OFFLINE is set and the local cache does not hold the model; load "
                                     "weights from disk instead")
    assert "set HF_HUB_OFFLINE=1" not in result.stderr and constants.HF_HUB_OFFLINE


def test_the_offline_scorer_leaves_the_hub_reachable_for_other_models(monkeypatch):
    """Loading the packaged MiniLM once set HF_HUB_OFFLINE for the whole process: a captioner
    named by a hub id could then never download in the same run."""
    from huggingface_hub import constants

    from visdiff.scorers.offline import load_sentence_model

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    load_sentence_model.cache_clear()
    load_sentence_model("cpu")
    assert not constants.HF_HUB_OFFLINE and "HF_HUB_OFFLINE" not in os.environ


def test_damaged_shard_warning_names_the_damaged_file(tmp_path, caplog):
    store = EmbeddingCache(tmp_path, "s")
    store.add(["0" * 64], np.zeros((1, 2), np.float16))
    emb_file = next(store.path.glob("*.emb.npy"))
    emb_file.write_bytes(b"damaged")
    with caplog.at_level(logging.WARNING):
        found, _ = EmbeddingCache(tmp_path, "s").lookup(["0" * 64])
    assert not found.any()
    assert emb_file.name in caplog.text and ".keys.npy" not in caplog.text


# --- nothing skipped in silence ------------------------------------------------------------------


def test_folder_lists_every_file_it_does_not_use(tmp_path):
    folder = tmp_path / "set"
    make_image(folder / "photo.jpg", (200, 10, 10))
    jpeg_bytes = (folder / "photo.jpg").read_bytes()
    (folder / "no_extension").write_bytes(jpeg_bytes)  # a JPEG all the same
    (folder / "drawing.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    Image.new("RGB", (16, 16), "blue").save(folder / "modern.avif")
    os.mkfifo(folder / "pipe.jpg")
    (folder / "device.png").symlink_to("/dev/zero")
    scan = list_image_files(folder)
    assert [p.name for p in scan.files] == ["modern.avif", "no_extension", "photo.jpg"]
    assert sorted((Path(s.source).name, s.reason) for s in scan.skipped) == [
        ("device.png", "not a regular file (character device)"),
        ("drawing.svg", "not an image file"),
        ("pipe.jpg", "not a regular file (named pipe)"),
    ]


def test_same_images_in_both_sets_are_said(image_dirs, tmp_path, caplog):
    a, _ = image_dirs
    copy = shutil.copytree(a, tmp_path / "copy of a")  # the same folder twice is refused: two names, one content
    with caplog.at_level(logging.WARNING):
        result = run_cli("rank", a, copy, "-H", "x")
    assert result.exit_code == 0 and "set A and set B hold the same images" in caplog.text


def test_images_repeated_in_a_set_or_shared_by_both_are_said(image_dirs, tmp_path, caplog):
    """A copy counts in the test as an image of its own (smaller p-values than the distinct
    images support), and an image in both sets counts on both sides: only sets that were
    wholly the same were said."""
    a, b = (tmp_path / "copies" / side for side in "ab")
    shutil.copytree(image_dirs[0], a)
    shutil.copytree(image_dirs[1], b)
    shutil.copy(a / "img0.png", a / "img0 copy.png")
    shutil.copy(a / "img1.png", b / "img1 from a.png")
    with caplog.at_level(logging.WARNING):
        result = run_cli("rank", a, b, "-H", "x")
    assert result.exit_code == 0, result.output
    assert (f"image set 'a' holds 1 image(s) more than once (same content, e.g. {a / 'img0 copy.png'} and "
            f"{a / 'img0.png'}); each copy counts in the statistics") in caplog.text
    assert "sets 'a' and 'b' share 1 image(s) (same content); each counts in both sets" in caplog.text
    assert "hold the same images" not in caplog.text


def test_csv_paths_leaving_its_folder_are_said_once(tmp_path, caplog):
    make_image(tmp_path / "outside.png", (1, 2, 3))
    make_image(tmp_path / "sets" / "inside.png", (3, 2, 1))
    csv_path = tmp_path / "sets" / "set.csv"
    csv_path.write_text("path,group_name\ninside.png,g\n../outside.png,g\n../outside.png,g\n")
    with caplog.at_level(logging.WARNING):
        image_set = load_image_set(csv_path)
        load_image_set(csv_path, group="g")  # read again, as a sweep reads it per value and side
    assert len(image_set) == 3
    assert caplog.text.count("lead outside its folder") == 1
