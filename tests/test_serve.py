"""``visdiff serve``: the JSON API in-process (Starlette's TestClient), a real uvicorn server
under a flood, reopening a finished run, and the command itself.

Images are generated: dark noisy ones (A) and bright ones (B), with the offline scorer, which
scores "dark photo" high on every image of A and low on every image of B.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import uvicorn
from PIL import Image
from starlette.testclient import TestClient

from tests.cli_helpers import run_cli
from tests.conftest import make_image
from visdiff.comparison import Comparison
from visdiff.errors import InputError
from visdiff.options import RunOptions
from visdiff.report import write_outputs
from visdiff.serve import FinishedRun, ServedComparison, create_app, serve_new_run
from visdiff.serve.app import MAX_HYPOTHESES, MAX_HYPOTHESIS_CHARS
from visdiff.stages import RunStages

TEST_HOST = "testserver"  # TestClient's Host header


def make_sets(folder: Path) -> tuple[Path, Path]:
    a, b = folder / "dark", folder / "bright"
    for i in range(8):
        make_image(a / f"d{i}.png", (35, 35, 35), noise_seed=i)
        make_image(b / f"b{i}.png", (215, 215, 215), noise_seed=50 + i)
    return a, b


@pytest.fixture(scope="module")
def sets(tmp_path_factory) -> tuple[Path, Path]:
    return make_sets(tmp_path_factory.mktemp("sets"))


@pytest.fixture(scope="module")
def module_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("serve-cache")


def stages_for(models: dict, cache: Path, **options) -> RunStages:
    return RunStages(RunOptions(cache_dir=str(cache), show_progress=False, **options), proposing=True, **models)


@pytest.fixture(scope="module")
def served(offline_models, sets, module_cache) -> ServedComparison:
    """A new run of the offline profile (vocabulary proposer), compared and kept."""
    stages = stages_for(offline_models, module_cache)
    return serve_new_run(stages, *sets)


@pytest.fixture(scope="module")
def client(served) -> TestClient:
    return TestClient(create_app(served, allowed_hosts=(TEST_HOST,)))


def test_run_gives_sets_rows_and_provenance(client, served):
    run = client.get("/api/run").json()
    assert (run["set_a"], run["set_b"], run["n_a"], run["n_b"]) == ("dark", "bright", 8, 8)
    assert run["rows"] and run["rows"][0]["rank"] == 1 and run["rows"] == served.rows
    assert {"auroc", "auroc_low", "auroc_high", "p_greater", "q_value"} <= set(run["rows"][0])
    provenance = run["provenance"]
    assert provenance["command_line"] and provenance["versions"]["python"]
    assert provenance["settings"]["stages"]["scorer"] == "offline"
    assert run["can_propose"] is True


def test_rank_answers_the_comparisons_statistics(client, served):
    response = client.get("/api/rank", params=[("hypothesis", "dark photo"), ("hypothesis", "bright photo")])
    assert response.status_code == 200
    rows = response.json()["rows"]
    expected = served.comparison.rank(["dark photo", "bright photo"])
    assert [row["hypothesis"] for row in rows] == list(expected["hypothesis"]) == ["dark photo", "bright photo"]
    assert [row["auroc"] for row in rows] == pytest.approx(list(expected["auroc"]))
    assert [row["q_value"] for row in rows] == pytest.approx(list(expected["q_value"]))
    dark = rows[0]
    assert dark["auroc"] == 1.0 and dark["auroc_low"] < 1.0 == dark["auroc_high"] and dark["significant"] is True
    # Asked again: the same rows, from the kept answers.
    assert client.get("/api/rank", params=[("hypothesis", "dark photo"), ("hypothesis", "bright photo")]).json()["rows"] == rows


@pytest.mark.parametrize(("params", "message"), [
    ([], "give at least one hypothesis"),
    ([("hypothesis", "x" * 5000)], f"at most {MAX_HYPOTHESIS_CHARS} characters, got one of 5000"),
    ([("hypothesis", "   ")], "no hypotheses to rank"),
    ([("hypothesis", f"h{i}") for i in range(MAX_HYPOTHESES + 1)], f"at most {MAX_HYPOTHESES} hypotheses"),
])
def test_rank_refuses_bad_input_with_a_json_error(client, params, message):
    response = client.get("/api/rank", params=params)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    assert message in response.json()["error"]
    assert client.get("/api/rank", params={"hypothesis": "dark photo"}).status_code == 200


def test_images_are_sorted_by_the_hypothesis_score(client, served):
    highest = client.get("/api/images", params={"hypothesis": "dark photo", "side": "b", "k": 3}).json()
    lowest = client.get("/api/images", params={"hypothesis": "dark photo", "side": "b", "k": 8, "lowest": 1}).json()
    scores = [image["score"] for image in highest["images"]]
    assert len(scores) == 3 and scores == sorted(scores, reverse=True)
    lowest_scores = [image["score"] for image in lowest["images"]]
    assert lowest_scores == sorted(lowest_scores) and scores == sorted(lowest_scores, reverse=True)[:3]
    keys_b = set(served.comparison.set_b.keys)
    assert {image["key"] for image in lowest["images"]} == keys_b
    assert all(image["name"].startswith("b") and image["name"].endswith(".png") for image in highest["images"])
    assert highest["images"][0]["thumbnail"] == f"thumbnails/b/{highest['images'][0]['key']}"


@pytest.mark.parametrize(("params", "message"), [
    ({"hypothesis": "dark photo", "side": "c"}, "side must be 'a' or 'b', got 'c'"),
    ({"hypothesis": "dark photo", "side": "a", "k": "0"}, "k must be a whole number from 1 to 60, got '0'"),
    ({"hypothesis": "dark photo", "side": "a", "k": "many"}, "got 'many'"),
    ({"hypothesis": "dark photo", "side": "a", "lowest": "maybe"}, "lowest must be 0, 1, true or false"),
    ({"hypothesis": "dark photo", "side": "\x1b[31m"}, "got '\\x1b[31m'"),  # control characters escaped
])
def test_images_refuse_bad_input(client, params, message):
    response = client.get("/api/images", params=params)
    assert response.status_code == 400 and message in response.json()["error"]


def test_histogram_of_the_scores_of_a_and_b(client):
    answer = client.get("/api/scores", params={"hypothesis": "dark photo"}).json()
    plot = answer["plot"]
    assert answer["mean_a"] > answer["mean_b"]
    assert plot["bars_a"] and plot["bars_b"] and plot["mean_a_x"] > plot["mean_b_x"]


def test_thumbnails_and_views_are_jpegs_of_the_sets_own_images(client, served):
    key = served.comparison.set_a.keys[0]
    thumbnail = client.get(f"/thumbnails/a/{key}")
    view = client.get(f"/images/a/{key}")
    for response in (thumbnail, view):
        assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
    assert thumbnail.headers["cache-control"] == "private, max-age=86400, immutable"  # named by its content
    assert client.get("/api/run").headers["cache-control"] == "no-store"
    image = Image.open(io.BytesIO(thumbnail.content))
    assert image.format == "JPEG" and image.size == (48, 40)  # smaller than 160 px: kept as it is
    assert client.get(f"/thumbnails/b/{key}").status_code == 404  # an image of A is not one of B


def test_no_path_reaches_a_file(client, sets, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("do not serve")
    image = next(sets[0].iterdir())
    attempts = [
        "/thumbnails/a/..%2F..%2F..%2Fetc%2Fpasswd", "/thumbnails/a/../../etc/passwd", f"/images/a/{image}",
        f"/images/a/{os.fspath(image).replace('/', '%2F')}", f"/thumbnails/a/{secret}", "/static/..%2Fserved.py",
        "/static/%2e%2e/app.py", "/static/../../pyproject.toml", "/static/index.html%00.js", "/etc/passwd",
        f"/{secret}", "/static/served.py",
    ]
    for path in attempts:
        response = client.get(path)
        assert response.status_code in (400, 404), path
        assert b"do not serve" not in response.content and b"root:" not in response.content
        assert not response.content.startswith(b"\x89PNG"), path  # never the file's own bytes


def test_page_is_static_with_a_strict_policy(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "default-src 'none'" in policy and "unsafe-inline" not in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    assert "<script>" not in page.text and 'src="static/app.js"' in page.text
    assert "dark" not in page.text  # the page holds no data: it asks the API and writes text nodes
    script = client.get("/static/app.js").text
    assert "innerHTML" not in script and "textContent" in script


def test_hosts_other_than_this_machine_are_refused(served):
    local = TestClient(create_app(served), base_url="http://127.0.0.1:8765")
    assert local.get("/api/run").status_code == 200
    assert local.get("/api/run", headers={"host": "attacker.example:8765"}).status_code == 400


def test_propose_runs_the_proposer_in_the_background(client):
    assert client.post("/api/propose", content="{}").status_code == 415  # no JSON: a cross-site form, say
    started = client.post("/api/propose", json={})
    assert started.status_code == 202 and started.json()["state"] in ("proposing", "ranking", "done")
    job = started.json()
    deadline = time.monotonic() + 120  # a bound for a stuck test, not a measurement
    while job["state"] in ("proposing", "ranking") and time.monotonic() < deadline:
        time.sleep(0.1)
        job = client.get("/api/propose").json()
    assert job["state"] == "done", job
    assert job["rows"] and all("auroc" in row for row in job["rows"])
    assert job["elapsed_s"] > 0


def test_requests_during_a_proposal_are_told_the_server_is_busy(client, served, monkeypatch):
    monkeypatch.setattr("visdiff.serve.served.LOCK_WAIT_S", 0.05)
    with served._lock:  # as a running proposal holds it
        busy = client.get("/api/rank", params={"hypothesis": "a phrase asked while busy"})
    assert busy.status_code == 503 and "busy proposing" in busy.json()["error"]
    assert client.get("/api/rank", params={"hypothesis": "a phrase asked while busy"}).status_code == 200


@pytest.fixture(scope="module")
def finished_run(offline_models, sets, module_cache, tmp_path_factory) -> Path:
    stages = stages_for(offline_models, module_cache)
    result = Comparison.of_stages(stages, *sets).compare()
    folder = tmp_path_factory.mktemp("run")
    write_outputs(result, folder)
    return folder


def test_a_finished_run_reopens_from_the_cache(offline_models, sets, module_cache, finished_run):
    finished = FinishedRun.read(finished_run)
    options = finished.options(RunOptions(cache_dir=str(module_cache), show_progress=False))
    assert options.scorer == "offline" and options.cache_dir == str(module_cache)
    stages = RunStages(options, **offline_models)
    served = finished.serve(stages, *sets, can_propose=False)
    assert stages.scoring.stats.encoded == 0 and stages.scoring.stats.cached == 16  # no image embedded again
    document = json.loads((finished_run / "results.json").read_text())
    assert served.rows == document["results"]
    assert served.provenance["opened_from"] == str(finished_run / "results.json")
    assert served.provenance["created_at"] == document["created_at"]

    client = TestClient(create_app(served, allowed_hosts=(TEST_HOST,)))
    assert client.get("/api/run").json()["can_propose"] is False
    refused = client.post("/api/propose", json={})
    assert refused.status_code == 409 and "no proposer is configured" in refused.json()["error"]
    assert client.get("/api/rank", params={"hypothesis": "dark photo"}).json()["rows"][0]["auroc"] == 1.0


def test_a_reopened_run_takes_every_proposing_option_from_the_command_line(finished_run):
    given = RunOptions(llm="gpt-4o", base_url="http://127.0.0.1:9/v1", hypotheses=5, goal="why is A dark",
                       temperature=0.2, rounds=2)
    options = FinishedRun.read(finished_run).options(given)
    assert (options.hypotheses, options.goal, options.temperature, options.rounds) == (5, "why is A dark", 0.2, 2)


def test_reopening_refuses_other_settings_and_other_images(offline_models, sets, module_cache, finished_run,
                                                           tmp_path):
    finished = FinishedRun.read(finished_run)
    with pytest.raises(InputError, match="--alpha 0.2: --results takes the run's settings"):
        finished.options(RunOptions(alpha=0.2))
    other_a, _ = make_sets(tmp_path)
    make_image(other_a / "extra.png", (0, 200, 0), noise_seed=7)
    stages = RunStages(finished.options(RunOptions(cache_dir=str(module_cache), show_progress=False)), **offline_models)
    with pytest.raises(InputError, match=r"set A \(dark\) does not hold the images of the run"):
        finished.serve(stages, other_a, sets[1], can_propose=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no results.json there"):
        FinishedRun.read(tmp_path / "empty")


@contextlib.contextmanager
def running_server(app) -> str:
    """A real uvicorn serving ``app`` on a free loopback port, in a thread; yields its URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # as visdiff serve's
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def test_a_flood_of_requests_is_answered(served):
    """Hundreds of concurrent requests, new hypotheses and 5,000-character ones among them: each
    gets its answer, and the server answers after them as before."""
    requests = [("/api/rank", {"hypothesis": f"dark thing {i}"}) for i in range(150)]
    requests += [("/api/rank", {"hypothesis": "y" * 5000}) for _ in range(50)]
    requests += [("/api/images", {"hypothesis": f"bright {i}", "side": "a", "k": 4}) for i in range(50)]
    with running_server(create_app(served)) as url, httpx.Client(base_url=url, timeout=60) as http:
        with ThreadPoolExecutor(32) as pool:
            statuses = list(pool.map(lambda r: http.get(r[0], params=r[1]).status_code, requests))
        assert statuses == [200] * 150 + [400] * 50 + [200] * 50
        assert http.get("/api/run").status_code == 200


def test_serve_command_refuses_bad_values_in_one_line(sets, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("serve", *sets, "--port", port)
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: cannot listen on 127.0.0.1:{port}: Address already in use"
    result = run_cli("serve", *sets, "--results", tmp_path, "--port", 0)
    assert result.exit_code == 2 and "no results.json there" in result.stderr and "Traceback" not in result.stderr
    # An empty host would listen on every interface.
    result = run_cli("serve", *sets, "--host", "", "--port", 0)
    assert result.exit_code == 2 and result.stderr.startswith("error: --host '' names no address")


def test_serve_command_reopens_a_run_says_it_is_exposed_and_stops_on_ctrl_c(sets, finished_run, module_cache):
    command = [sys.executable, "-m", "visdiff", "serve", *map(str, sets), "--results", str(finished_run),
               "--port", "0", "--host", "0.0.0.0", "--cache-dir", str(module_cache)]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        while not any(line.startswith("serving") for line in lines):
            line = process.stderr.readline()
            assert line, f"visdiff serve ended: {''.join(lines)}"
            lines.append(line)
        assert any("exposed to every machine" in line for line in lines)
        url = lines[-1].split(" at ")[1].split(" ")[0].replace("0.0.0.0", "127.0.0.1")
        run = httpx.get(url + "api/run", timeout=30).json()
        assert run["set_a"] == "dark" and run["can_propose"] is False
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 130
        assert process.stderr.read().strip() == "error: interrupted"
    finally:
        process.kill()
