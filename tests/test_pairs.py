"""Paired sets (``--pair-by``): table rows of A and B sharing a key are shown to the llm
proposer side by side; statistics stay over both whole sets. Captions come from the scripted
server (one distinct caption per image), the scorer is the tiny random CLIP."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pandas as pd
import pytest

from tests.cli_helpers import run_cli
from tests.fake_openai import Reply
from visdiff.errors import InputError
from visdiff.image_sets import ImageItem, ImageSet
from visdiff.sources import load_image_set
from visdiff.pairs import paired_positions

from .conftest import make_image

# Fixture: fake_openai (a scripted OpenAI-compatible server per test).
pytest_plugins = ["tests.fake_openai"]


@pytest.fixture
def paired_table(tmp_path):
    """Two generators given prompts p0..p4: model m1 (dark images) and m2 (bright), B rows in
    reverse order; m1 also has an image of prompt p9 (no partner) and m2 one with no prompt.
    Prompts p0-p2 are in batch x, the rest in batch y."""
    rows = []
    for i in range(5):
        make_image(tmp_path / "imgs" / f"m1-{i}.png", (40, 40, 40), noise_seed=i)
        rows.append({"path": f"imgs/m1-{i}.png", "model": "m1", "prompt": f"p{i}", "batch": "x" if i < 3 else "y"})
    for i in reversed(range(5)):
        make_image(tmp_path / "imgs" / f"m2-{i}.png", (220, 220, 220), noise_seed=10 + i)
        rows.append({"path": f"imgs/m2-{i}.png", "model": "m2", "prompt": f"p{i}", "batch": "x" if i < 3 else "y"})
    make_image(tmp_path / "imgs" / "m1-extra.png", (50, 50, 50), noise_seed=99)
    rows.append({"path": "imgs/m1-extra.png", "model": "m1", "prompt": "p9", "batch": "y"})
    make_image(tmp_path / "imgs" / "m2-extra.png", (200, 200, 200), noise_seed=98)
    rows.append({"path": "imgs/m2-extra.png", "model": "m2", "prompt": "", "batch": "y"})
    table = tmp_path / "generations.csv"
    pd.DataFrame(rows).to_csv(table, index=False)
    return table


def _items(*keys):
    return ImageSet(tuple(ImageItem(key=f"{name}-{i}", source=f"{name}-{i}", pair_key=key)
                          for i, (name, key) in enumerate(keys)), name="S")


def test_rows_sharing_a_key_pair_up_in_row_order(paired_table):
    set_a = load_image_set(paired_table, group="m1", group_column="model", pair_by="prompt", name="A")
    set_b = load_image_set(paired_table, group="m2", group_column="model", pair_by="prompt", name="B")
    pairs = paired_positions(set_a, set_b, column="prompt")
    assert [(set_a.items[a].path.name, set_b.items[b].path.name) for a, b in pairs] == \
        [(f"m1-{i}.png", f"m2-{i}.png") for i in range(5)]  # p9 and the blank key have no partner
    assert set_b.items[-1].pair_key is None
    # A key repeated (two seeds of one prompt): first with first, the extra one stays unpaired.
    repeated = paired_positions(_items(("a", "k"), ("a", "k"), ("a", "j")), _items(("b", "j"), ("b", "k")), column="c")
    assert repeated == [(0, 1), (2, 0)]


def test_pairing_errors_name_what_is_wrong(paired_table, image_dirs):
    with pytest.raises(InputError, match=r"no --pair-by column 'seed'; columns: \['path', 'model', 'prompt', 'batch'\]"):
        load_image_set(paired_table, group="m1", group_column="model", pair_by="seed")
    with pytest.raises(InputError, match=r"pairs rows of tables; .* is not one"):
        load_image_set(image_dirs[0], pair_by="prompt")
    set_a = load_image_set(paired_table, group="m1", group_column="model", pair_by="path", name="A")
    set_b = load_image_set(paired_table, group="m2", group_column="model", pair_by="path", name="B")
    with pytest.raises(InputError, match=r"no 'path' key is in both set A and set B"):
        paired_positions(set_a, set_b, column="path")
    unkeyed = load_image_set(paired_table, group="m2", group_column="model", name="B")
    with pytest.raises(InputError, match=r"set B has no 'prompt' keys to pair by"):
        paired_positions(set_a, unkeyed, column="prompt")


def caption_per_image(request):
    """A distinct caption per image for captioning requests, a list for the proposer."""
    content = request.body["messages"][-1]["content"]
    if isinstance(content, list) and any(part["type"] == "image_url" for part in content):
        image = next(part for part in content if part["type"] == "image_url")["image_url"]["url"]
        return Reply(f"photo number {hashlib.sha256(image.encode()).hexdigest()[:8]}")
    return Reply("* dark photos\n* film grain")


def paired_args(table, server, scorer, *extra):
    return ["compare", str(table), "--group-col", "model", "--group-a", "m1", "--group-b", "m2",
            "--captioner", "openai:fake-vision", "--llm", "fake-model", "--base-url", server.base_url,
            "--scorer", scorer, "--rounds", "2", "--samples", "3", *extra]


def test_paired_compare_end_to_end(paired_table, fake_openai, tiny_clip_weights, tmp_path):
    fake_openai.respond = caption_per_image
    out = tmp_path / "out"
    result = run_cli(*paired_args(paired_table, fake_openai, tiny_clip_weights, "--pair-by", "prompt",
                                            "--out", str(out), "-q"))
    assert result.exit_code == 0, result.output
    saved = json.loads((out / "results.json").read_text())
    assert (saved["config"]["n_a"], saved["config"]["n_b"]) == (6, 6)  # unpaired images are in the statistics
    assert saved["config"]["options"]["pair_by"] == "prompt"
    assert sorted(r["hypothesis"] for r in saved["results"]) == ["dark photos", "film grain"]
    table = pd.read_csv(paired_table, keep_default_na=False)
    prompt_of = {str((paired_table.parent / p).resolve()): k for p, k in zip(table.path, table.prompt)}
    source_of = {im["key"]: im["source"] for side in ("a", "b") for im in saved["sets"][side]["images"]}
    rounds = saved["proposal_rounds"]
    asked = [r for r in fake_openai.requests if isinstance(r.body["messages"][-1]["content"], str)]
    assert len(rounds) == len(asked) == 2
    # Each pair under its key (the generation prompt, as the reference shows it), then its captions;
    # the rounds are asked concurrently, so a request is matched to its round by what it shows.
    shown = sorted(re.findall(r"Pair \d+, prompt: (.*)\n  Group A: (.*)\n  Group B: (.*)", request.last_user_text)
                   for request in asked)
    assert shown == sorted([(p["key"], record["captions_a"][p["a"]], record["captions_b"][p["b"]])
                            for p in record["pairs"]] for record in rounds)
    for record in rounds:
        assert record["pair_by"] == "prompt" and len(record["pairs"]) == 3
        for pair in record["pairs"]:  # both images of a pair come from rows with the pair's key
            assert prompt_of[str(Path(source_of[pair["a"]]).resolve())] == pair["key"]
            assert prompt_of[str(Path(source_of[pair["b"]]).resolve())] == pair["key"]
        assert record["paired_prompt"]["prompt"] == "propose_paired"
    assert rounds[0]["pairs"] != rounds[1]["pairs"]  # each round samples its own pairs
    assert "3 pairs by prompt" in (out / "report.html").read_text()


@pytest.mark.parametrize(("extra", "message"), [
    (["--pair-by", "seed"], r"no --pair-by column 'seed'; columns: \['path', 'model', 'prompt', 'batch'\]"),
    (["--pair-by", "path"], r"no 'path' key is in both set generations.csv: model=m1 and set generations.csv: model=m2"),
    (["--pair-by", "prompt", "--proposer", "vlm:fake-model"], r"--pair-by shows an LLM the captions .* give --llm MODEL"),
])
def test_pairing_usage_errors_exit_2_before_any_model_runs(paired_table, fake_openai, tiny_clip_weights, extra, message):
    result = run_cli(*paired_args(paired_table, fake_openai, tiny_clip_weights, *extra))
    assert result.exit_code == 2, result.output
    assert re.search(message, " ".join(result.stderr.split())) and "Traceback" not in result.output
    assert fake_openai.requests == []  # nothing captioned, nothing proposed


def test_pair_by_with_the_vocabulary_proposer_or_folders_is_a_usage_error(paired_table, image_dirs):
    offline = run_cli("compare", str(paired_table), "--group-col", "model", "--group-a", "m1",
                                  "--group-b", "m2", "--pair-by", "prompt", "-q")
    assert offline.exit_code == 2 and "give --llm MODEL" in offline.stderr
    folders = run_cli("compare", *map(str, image_dirs), "--pair-by", "prompt", "--llm", "m",
                                  "--base-url", "http://127.0.0.1:9/v1", "-q")  # a local server needs no key
    assert folders.exit_code == 2 and "pairs rows of tables" in folders.stderr


def test_sweep_checks_the_pair_column_before_any_value(tmp_path, paired_table):
    result = run_cli("sweep", str(paired_table), "--by", "model", "--group-col", "model",
                                 "--group-a", "m1", "--group-b", "m2", "--pair-by", "seed", "--llm", "m",
                                 "--out", str(tmp_path / "sweep"))
    assert result.exit_code == 2 and "has no column 'seed'" in result.stderr
    assert not (tmp_path / "sweep").exists()


def test_propose_and_sweep_show_pairs(paired_table, fake_openai, tiny_clip_weights, tmp_path):
    fake_openai.respond = caption_per_image
    models = ["--captioner", "openai:fake-vision", "--llm", "fake-model", "--base-url", fake_openai.base_url,
              "--rounds", "1", "--samples", "5", "--pair-by", "prompt"]
    proposed = run_cli("propose", str(paired_table), "--group-col", "model", "--group-a", "m1",
                                   "--group-b", "m2", *models, "--json", "-")
    assert proposed.exit_code == 0, proposed.output
    assert json.loads(proposed.stdout) == {"a_over_b": ["dark photos", "film grain"]}
    swept = run_cli("sweep", str(paired_table), "--by", "batch", "--group-col", "model", "--group-a", "m1",
                                "--group-b", "m2", *models, "--scorer", tiny_clip_weights,
                                "--out", str(tmp_path / "sweep"), "--no-reports", "-q")
    assert swept.exit_code == 0, swept.output
    asked = [r.last_user_text for r in fake_openai.requests if isinstance(r.body["messages"][-1]["content"], str)]
    # propose: all 5 pairs; sweep: the 3 pairs of batch x, the 2 of batch y (p9 and the blank key unpaired).
    assert [len(re.findall(r"^Pair \d+, prompt: ", text, re.M)) for text in asked] == [5, 3, 2]


def test_pair_by_with_several_sets_is_a_usage_error(paired_table):
    result = run_cli("compare", str(paired_table), "--group-col", "model", "--group", "m1", "--group", "m2",
                                 "--group", "m3", "--pair-by", "prompt", "--llm", "m", "-q")
    assert result.exit_code == 2 and "--pair-by 'prompt' (pair_by=) pairs the images of two sets" in result.stderr
