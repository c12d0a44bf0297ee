"""End to end: tiny random BLIP-2 captioner + scripted LLM server + tiny random CLIP, through
``visdiff.compare``/``propose`` and the ``visdiff compare|propose|caption`` commands."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.fake_openai import FAST_RETRY, Reply
import visdiff
from tests.cli_helpers import run_cli
from visdiff import compare, propose, stats
from visdiff.captioners import create_captioner
from visdiff.errors import InputError, ServiceError
from visdiff.options import RunOptions
from visdiff.profiles import LAPTOP, OFFLINE, PAPER, get_profile

# Fixtures: fake_openai (scripted OpenAI-compatible server), tiny_* model folders.
pytest_plugins = ["tests.captioner_fixtures", "tests.fake_openai"]

SECRET = "sk-never-print-me-0123456789"
ANSWERS = ["* red tones\n* noisy textures", "1. Blue tones\n2. **Red tones**: warm", "- dark corners\n- bright centers"]


class CountingCaptioner:
    def __init__(self, inner):
        self.inner, self.spec, self.cache_id = inner, inner.spec, inner.cache_id
        self.images = 0

    def caption_images(self, images):
        self.images += len(images)
        return self.inner.caption_images(images)


@pytest.fixture
def tiny_captioner(tiny_blip2_opt):
    return CountingCaptioner(create_captioner(f"blip2:{tiny_blip2_opt}", max_new_tokens=4))


@pytest.fixture(autouse=True)
def api_key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)


def answer_in_turn(request):
    """Answers cycle by round seed, so retries and reruns get the same round's answer."""
    return Reply(ANSWERS[request.body["seed"] % 1000 % len(ANSWERS)])


def caption_lines(prompt: str) -> tuple[int, int]:
    """Caption lines listed under "Group A:" and "Group B:" in a propose prompt."""
    section_a = prompt.split("Group A:\n", 1)[1].split("\n\nGroup B:", 1)[0]
    section_b = prompt.split("Group B:\n", 1)[1].split("\n\n", 1)[0]
    return section_a.count("- "), section_b.count("- ")


def run(image_dirs, server, captioner, scorer, **options):
    a, b = image_dirs
    return compare(a, b, captioner=captioner, proposer="llm:fake-model", base_url=server.base_url,
                   scorer=scorer, rounds=3, samples_per_set=4, **options)


def test_compare_end_to_end(image_dirs, fake_openai, tiny_captioner, tiny_clip_weights):
    fake_openai.respond = answer_in_turn
    result = run(image_dirs, fake_openai, tiny_captioner, tiny_clip_weights)
    assert result.proposals == ["red tones", "noisy textures", "Blue tones", "dark corners", "bright centers"]
    table = result.table
    # Every proposal is a row or a near-duplicate merged into one (the random text encoder
    # finds some of these phrases alike).
    assert sorted([*table.hypothesis, *(v for variants in table.merged for v in variants)]) == sorted(result.proposals)
    assert list(table.auroc) == sorted(table.auroc, reverse=True)
    assert {"auroc", "auroc_low", "auroc_high", "p_greater", "q_value", "significant"} <= set(table.columns)
    assert result.scores_a.shape == (6, len(table)) and result.scores_b.shape == (6, len(table))
    # Score columns follow the table's rows.
    for i, row in table.iterrows():
        assert row.auroc == pytest.approx(stats.auroc_score(result.scores_a[:, [i]], result.scores_b[:, [i]])[0])
    # Captions of the sampled images only (4 of 6 per round, 3 rounds), keyed by content hash.
    assert 4 <= len(result.captions_a) <= 6 and set(result.captions_a) <= set(result.set_a.keys)
    assert 4 <= len(result.captions_b) <= 6 and set(result.captions_b) <= set(result.set_b.keys)
    assert all(len(c.split()) == 4 for c in result.captions_a.values())
    # Each round's prompt carried 4 captions of A and 4 of B.
    assert len(fake_openai.requests) == 3
    assert caption_lines(fake_openai.requests[0].last_user_text) == (4, 4)
    config = result.config
    assert config["proposer"]["prompt"] == "propose" and len(config["proposer"]["prompt_sha256"]) == 64
    assert config["proposer"]["model"] == "fake-model" and config["proposer"]["base_url"] == fake_openai.base_url
    assert config["scorer"] == tiny_clip_weights and config["captioner"] == tiny_captioner.spec
    assert config["n_a"] == 6 and config["options"]["seed"] == 0 and config["options"]["rounds"] == 3
    assert SECRET not in json.dumps(config)
    assert {"load_images", "embed", "caption", "propose", "score", "rank", "total"} <= set(result.timings)
    assert all(t >= 0 for t in result.timings.values())
    # Provenance: each round's sample, captions, the exact text sent and the answer.
    # Each round names the set it describes: the folder name here.
    assert [(r["direction"], r["round"]) for r in result.proposal_rounds] == [("a", 1), ("a", 2), ("a", 3)]
    # Rounds are asked concurrently: requests arrive in any order, records keep round order.
    in_round_order = sorted(fake_openai.requests, key=lambda request: request.body["seed"])
    for record, request in zip(result.proposal_rounds, in_round_order, strict=True):
        assert {im["key"] for im in record["images_a"]} <= set(result.set_a.keys) and len(record["images_a"]) == 4
        assert set(record["captions_b"]) == {im["key"] for im in record["images_b"]}
        assert record["requests"][0]["messages"] == request.body["messages"]
        assert record["requests"][0]["answer"] == ANSWERS[request.body["seed"] % len(ANSWERS)]


def test_rerun_is_served_from_caches(image_dirs, fake_openai, tiny_captioner, tiny_clip_weights):
    fake_openai.respond = answer_in_turn
    first = run(image_dirs, fake_openai, tiny_captioner, tiny_clip_weights)
    captioned = tiny_captioner.images
    # The endpoint is down now: everything comes from the caption and LLM caches.
    fake_openai.respond = lambda request: Reply(status=500, headers=FAST_RETRY)
    second = run(image_dirs, fake_openai, tiny_captioner, tiny_clip_weights)
    assert tiny_captioner.images == captioned and len(fake_openai.requests) == 3
    assert second.proposals == first.proposals
    np.testing.assert_array_equal(second.scores_a, first.scores_a)
    assert second.config["proposer"]["llm_requests"] == {"requests": 0, "cached": 3}
    assert second.config["captions"]["captioned"] == 0


def test_late_failure_keeps_finished_work(image_dirs, fake_openai, tiny_captioner, tiny_clip_weights):
    # Round 1 answers, then the server fails for good: an error, but round 1 is cached.
    fake_openai.replies.append(Reply(ANSWERS[0]))
    fake_openai.respond = lambda request: Reply(status=503, content="maintenance", headers=FAST_RETRY)
    with pytest.raises(ServiceError, match="HTTP 503"):
        run(image_dirs, fake_openai, tiny_captioner, tiny_clip_weights)
    captioned = tiny_captioner.images
    asked = len(fake_openai.requests)
    fake_openai.respond = answer_in_turn
    result = run(image_dirs, fake_openai, tiny_captioner, tiny_clip_weights)
    assert len(fake_openai.requests) - asked == 2  # rounds 2 and 3 only
    assert result.config["proposer"]["llm_requests"] == {"requests": 2, "cached": 1}
    # Only images first sampled in rounds 2-3 are captioned now.
    assert tiny_captioner.images - captioned == result.config["captions"]["captioned"]
    assert result.config["captions"]["cached"] >= 8


def test_both_directions(image_dirs, fake_openai, tiny_captioner, tiny_clip_weights):
    fake_openai.respond = answer_in_turn
    # Unmerged: the random text encoder finds some of these phrases alike.
    result = run(image_dirs, fake_openai, tiny_captioner, tiny_clip_weights, both_directions=True, merge=False)
    table = result.table
    assert list(table.columns[:2]) == ["hypothesis", "direction"]
    assert set(table.direction) == {"A", "B"} and list(table.direction) == sorted(table.direction)
    assert result.config["n_proposals"] == {"A": 5, "B": 5}
    assert len(result.proposals) == 10 and result.scores_a.shape == (6, 10)
    for i, row in table.iterrows():
        a, b = result.scores_a[:, [i]], result.scores_b[:, [i]]
        favoured, other = (a, b) if row.direction == "A" else (b, a)
        assert row.auroc == pytest.approx(stats.auroc_score(favoured, other)[0])
        assert row.mean_a == pytest.approx(a.mean()) and row.mean_b == pytest.approx(b.mean())
    for side in ("A", "B"):
        block = table[table.direction == side]
        assert list(block.auroc) == sorted(block.auroc, reverse=True)


def test_propose_api(image_dirs, fake_openai, tiny_captioner):
    fake_openai.respond = answer_in_turn
    a, b = image_dirs
    phrases = propose(a, b, captioner=tiny_captioner, llm="fake-model", base_url=fake_openai.base_url,
                      rounds=1, samples_per_set=3)
    assert phrases == ["red tones", "noisy textures"]
    assert len(fake_openai.requests) == 1 and caption_lines(fake_openai.requests[0].last_user_text) == (3, 3)


def test_llm_option_picks_the_chat_model():
    assert RunOptions(llm="m").proposer_spec() == "llm:m"
    assert RunOptions(profile="laptop", llm="m").proposer_spec() == "llm:m"
    assert RunOptions(proposer="vlm:x", llm="m").proposer_spec() == "vlm:m"
    assert RunOptions(profile="paper").proposer_spec() == "llm:gpt-4o"
    with pytest.raises(InputError, match="applies to the llm/vlm proposers"):
        RunOptions(proposer="vocabulary", llm="m").proposer_spec()


def test_profiles():
    assert get_profile("offline") is OFFLINE
    assert PAPER.captioner == "blip2:Salesforce/blip2-flan-t5-xxl"
    assert PAPER.scorer == "open_clip:ViT-bigG-14:laion2b_s39b_b160k"
    assert LAPTOP.scorer == "open_clip:ViT-B-32:laion2b_s34b_b79k"
    with pytest.raises(InputError, match="choose one of: offline, laptop, paper"):
        get_profile("gpu")


# --- CLI -------------------------------------------------------------------------------------
# The commands caption through the openai backend on the same scripted server: generating 60
# tokens with the tiny BLIP-2 per image would make each test slow on a shared CPU.


def caption_or_answer(request):
    """Vision requests (captioning) get a caption, text requests a round's list."""
    content = request.body["messages"][-1]["content"]
    if isinstance(content, list) and any(part["type"] == "image_url" for part in content):
        return Reply("a small square photo")
    return answer_in_turn(request)


def cli_args(image_dirs, server, scorer, *extra):
    a, b = image_dirs
    return ["compare", str(a), str(b), "--captioner", "openai:fake-vision", "--llm", "fake-model",
            "--base-url", server.base_url, "--scorer", scorer, "--rounds", "2", "--samples", "3", *extra]


def test_cli_compare_json(image_dirs, fake_openai, tiny_clip_weights, isolated_cache):
    fake_openai.respond = caption_or_answer
    result = run_cli(*cli_args(image_dirs, fake_openai, tiny_clip_weights, "--json", "-", "--no-merge"))
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["visdiff_version"] == visdiff.__version__ and payload["created_at"].endswith("+00:00")
    assert sorted(r["hypothesis"] for r in payload["results"]) == ["Blue tones", "noisy textures", "red tones"]
    assert payload["proposals"] == ["red tones", "noisy textures", "Blue tones"]
    assert payload["config"]["proposer"]["prompt"] == "propose"
    assert {"captioner", "scorer", "options"} <= set(payload["config"]) and "total" in payload["timings"]
    assert "using the offline profile" not in result.stderr
    stored = "".join(p.read_text(errors="ignore") for p in isolated_cache.rglob("*.json"))
    assert "red tones" in stored and "a small square photo" in stored  # answers and captions cached...
    assert SECRET not in result.output + stored  # ...and the key is nowhere


def test_cli_compare_table_both_directions_and_report(image_dirs, fake_openai, tiny_clip_weights, tmp_path):
    fake_openai.respond = caption_or_answer
    out = tmp_path / "report"
    result = run_cli(*cli_args(image_dirs, fake_openai, tiny_clip_weights, "--both-directions", "--all",
                                         "--out", str(out)))
    assert result.exit_code == 0, result.output
    # One table per direction, titled by the favoured set (rich wraps long cells at 80 columns).
    assert "more true of A" in result.stdout and "more true of B" in result.stdout
    assert "red tones" in result.stdout
    assert (out / "report.html").is_file() and (out / "results.json").is_file()


def test_cli_compare_without_flags_says_offline_once(tmp_path):
    result = run_cli("compare", str(tmp_path / "missing"), str(tmp_path / "missing2"))
    assert result.exit_code == 2
    note = [line for line in result.stderr.splitlines() if "offline profile" in line]
    assert len(note) == 1 and "--profile paper" in note[0]
    assert "no such file or folder" in result.stderr


def test_cli_compare_service_failure_is_one_line_exit_1(image_dirs, fake_openai, tiny_clip_weights):
    fake_openai.respond = lambda request: Reply(status=500, content="boom", headers=FAST_RETRY)
    result = run_cli(*cli_args(image_dirs, fake_openai, tiny_clip_weights))
    assert result.exit_code == 1
    assert "error:" in result.stderr and "HTTP 500" in result.stderr and "Traceback" not in result.output


def test_cli_propose_both_directions(image_dirs, fake_openai):
    fake_openai.respond = caption_or_answer
    a, b = image_dirs
    result = run_cli("propose", str(a), str(b), "--captioner", "openai:fake-vision", "--llm", "fake-model",
                                 "--base-url", fake_openai.base_url, "--rounds", "1", "--both-directions", "--json", "-")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"a_over_b": ["red tones", "noisy textures"], "b_over_a": ["red tones", "noisy textures"]}


def test_cli_caption_csv_and_jsonl(image_dirs, tiny_blip2_opt, tmp_path):
    a, _ = image_dirs
    result = run_cli("caption", str(a), "--captioner", f"blip2:{tiny_blip2_opt}", "--max-new-tokens", "3",
                                 "--csv", "-", "--jsonl", str(tmp_path / "c.jsonl"))
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "source,sha256,caption" and len(lines) == 7
    text = (tmp_path / "c.jsonl").read_text()
    records = [json.loads(line) for line in text.splitlines()]
    assert len(records) == 6 and all(len(r["caption"].split()) == 3 for r in records)
    assert "\\/" not in text and f'"source": "{a}/' in text  # paths as written, not pandas' "\/"


def test_cli_caption_bad_option_for_backend_is_exit_2(image_dirs):
    a, _ = image_dirs
    result = run_cli("caption", str(a), "--captioner", "offline", "--max-new-tokens", "3")
    assert result.exit_code == 2 and "does not take the option(s)" in result.stderr


def test_ranking_shows_the_one_sided_p_of_the_claim_and_never_heads_a_contrary_row_as_the_claim(capsys):
    from visdiff.cli.output import render_ranking
    from visdiff.ranking import format_p_value, rank_scores

    rng = np.random.default_rng(0)
    scores_a, scores_b = rng.normal(size=(30, 2)), rng.normal(size=(30, 2))
    scores_a[:, 0] += 3.0  # more true of A
    scores_b[:, 1] += 3.0  # more true of B
    table = rank_scores(scores_a, scores_b, ["supported", "opposite"])
    opposite = table.set_index("hypothesis").loc["opposite"]
    assert opposite.p_greater > 0.99 and opposite.favours == "B"
    render_ranking(table, title="run", supported_only=True)
    shown = " ".join(capsys.readouterr().out.split())
    assert "p (A>B)" in shown and "Mann-Whitney" in shown and "95% CI" in shown
    # Under "more true of A" only the row whose scores favour A; the other is counted apart.
    assert "supported" in shown and "opposite" not in shown
    assert "1 candidate(s) proposed as more true of A score no higher on it (AUROC <= 0.5)" in shown
    render_ranking(table, title="run")
    shown = " ".join(capsys.readouterr().out.split())
    header, contrary = shown.split("tested, but not more true of A")
    assert "supported" in header and "opposite" not in header
    assert "opposite" in contrary and format_p_value(opposite.p_greater) in contrary


def test_ranking_marks_a_hypothesis_with_one_score_everywhere(capsys, monkeypatch):
    from rich.console import Console

    from visdiff.cli import output
    from visdiff.ranking import rank_scores

    monkeypatch.setattr(output, "stdout", Console(width=200))
    table = rank_scores(np.full((5, 1), 0.02), np.full((6, 1), 0.02), ["indoor scenes"])
    output.render_ranking(table, title="run")
    shown = " ".join(capsys.readouterr().out.split())
    assert "indoor scenes (same score on every image: says nothing)" in shown


def test_ranking_leads_with_supported_rows_and_counts_the_rest(capsys):
    from visdiff.cli.output import render_ranking
    from visdiff.ranking import rank_scores

    rng = np.random.default_rng(0)
    scores_a, scores_b = rng.normal(size=(30, 3)), rng.normal(size=(30, 3))
    scores_a[:, 0] += 3.0  # one strong finding, two near chance (both a little higher on A)
    scores_a[:, 1:] += 0.15
    table = rank_scores(scores_a, scores_b, ["strong", "noise one", "noise two"])
    render_ranking(table, supported_only=True)
    shown = capsys.readouterr().out
    assert "strong" in shown and "noise one" not in shown and "noise two" not in shown
    assert "2 more candidate(s) were tried and are not significant" in shown and "--all" in shown
    render_ranking(table.iloc[1:], supported_only=True)
    shown = capsys.readouterr().out
    assert "No candidate is significant" in shown and "1 more candidate(s)" in shown
    render_ranking(table)
    assert "noise two" in capsys.readouterr().out
