"""Refinement (``--refine N``): what the best hypotheses miss, the rounds asking the chat model
for more, their early stop and provenance; offline captioner and scorer (real packaged
weights, loaded once for the module), scripted LLM server."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

from tests.cli_helpers import run_cli
from tests.fake_openai import Reply
from visdiff import compare
from visdiff.errors import InputError
from visdiff.options import RunOptions
from visdiff.proposers import create_proposer
from visdiff.ranking import rank_scores
from visdiff.refine import find_evidence, fraction_below
from visdiff.report import write_outputs


# Fixture: fake_openai (a scripted OpenAI-compatible server per test).
pytest_plugins = ["tests.fake_openai"]


def test_each_images_fraction_below_averages_to_the_auroc():
    rng = np.random.default_rng(0)
    scores_a = torch.from_numpy(rng.integers(0, 5, (30, 4)).astype(np.float32))  # many ties
    scores_b = torch.from_numpy(rng.integers(0, 4, (20, 4)).astype(np.float32))
    table = rank_scores(scores_a.numpy(), scores_b.numpy(), ["h0", "h1", "h2", "h3"]).set_index("hypothesis")
    shares = fraction_below(scores_b, scores_a).mean(dim=0).numpy()
    np.testing.assert_allclose(shares, table.loc[["h0", "h1", "h2", "h3"], "auroc"].to_numpy(), rtol=1e-6)


def test_evidence_is_what_no_top_hypothesis_explains_and_what_scores_alike():
    # Two hypotheses. A2 is low on both (unexplained); A3 is low on h0 but explained by h1.
    # B2 scores like A on h0 (a look-alike); B0 and B1 score low on both.
    scores_a = torch.tensor([[0.9, 0.1], [0.8, 0.1], [0.1, 0.02], [0.2, 0.9]])
    scores_b = torch.tensor([[0.2, 0.05], [0.3, 0.0], [0.85, 0.1]])
    evidence = find_evidence(scores_a, scores_b, k=5)
    assert evidence.unexplained == [2] and evidence.look_alikes == [2]
    assert not find_evidence(torch.tensor([[2.0], [3.0]]), torch.tensor([[0.0], [1.0]]), k=5)  # nothing missed
    many = find_evidence(torch.zeros(6, 1), torch.ones(4, 1), k=3)  # every A image is missed: k shown
    assert many.unexplained == [0, 1, 2] and many.look_alikes == [0, 1, 2]


def scripted(refinements: list[str]):
    """Proposal rounds answer "dogs"; refinement requests (they show AUROCs) get
    ``refinements`` in turn."""
    answers = iter(refinements)

    def respond(request):
        return Reply(next(answers) if "AUROC" in request.last_user_text else "* dogs")

    return respond


def refine_section(prompt: str, heading: str) -> list[str]:
    return re.findall(r"^- (.*)$", prompt.split(heading, 1)[1].split("\n\n", 1)[0], re.M)


def run(sets, server, models, **options):
    return compare(*sets, llm="fake-model", base_url=server.base_url, rounds=1, samples_per_set=4,
                   show_progress=False, **models, **options)


def test_refinement_ranks_new_phrases_and_stops_once_best_auroc_cannot_improve(
        dark_and_bright, fake_openai, offline_models, tmp_path):
    fake_openai.respond = scripted(["* dark photos\n* Dogs"])
    result = run(dark_and_bright, fake_openai, offline_models, refine=3)
    assert result.table.iloc[0]["hypothesis"] == "dark photos" and result.table.iloc[0]["auroc"] == 1.0
    assert result.proposals == ["dogs", "dark photos"]  # "Dogs" is no new phrase
    # One proposal round, one refinement round: at AUROC 1 there is nothing left to improve.
    assert len(fake_openai.requests) == 2
    [record] = [r for r in result.proposal_rounds if r.get("kind") == "refine"]
    assert record["new_phrases"] == ["dark photos"] and record["llm_calls"] == 1
    assert record["best_auroc_before"] < record["best_auroc_after"] == 1.0
    assert record["prompt"]["prompt"] == "refine"
    prompt = fake_openai.requests[1].last_user_text
    assert f"- dogs (AUROC {record['best_auroc_before']:.2f})" in prompt
    keys_a, keys_b = set(result.set_a.keys), set(result.set_b.keys)
    assert record["images_a"] and {im["key"] for im in record["images_a"]} <= keys_a
    assert {im["key"] for im in record["images_b"]} <= keys_b
    assert refine_section(prompt, "none of these concepts fits:\n") == list(record["captions_a"].values())
    assert refine_section(prompt, "wrongly fit:\n") == list(record["captions_b"].values())
    assert record["requests"][0]["answer"] == "* dark photos\n* Dogs"
    write_outputs(result, tmp_path / "out")
    assert "Refinement round 1, more true of" in (tmp_path / "out" / "report.html").read_text()


def test_refinement_stops_when_the_best_auroc_does_not_improve(dark_and_bright, fake_openai, offline_models):
    fake_openai.respond = scripted(["* cats", "* dark photos"])
    result = run(dark_and_bright, fake_openai, offline_models, refine=2)
    assert len(fake_openai.requests) == 2  # the second refinement round is never asked
    assert "cats" in set(result.table["hypothesis"]) and "dark photos" not in set(result.table["hypothesis"])
    [record] = [r for r in result.proposal_rounds if r.get("kind") == "refine"]
    assert record["best_auroc_after"] == record["best_auroc_before"] and record["new_phrases"] == ["cats"]


def test_refinement_needs_a_chat_proposer_and_its_template(tmp_path, dark_and_bright):
    result = run_cli("compare", *map(str, dark_and_bright), "--refine", "1", "-q")
    assert result.exit_code == 2 and "--refine asks a chat model" in result.stderr and "--llm MODEL" in result.stderr
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "propose.txt").write_text("$captions_a $captions_b $n_hypotheses")
    (tmp_path / "mine" / "propose_retry.txt").write_text("again")
    # Checked before any image is read: the sets here do not even exist.
    with pytest.raises(InputError, match=r"has no refine.txt"):
        compare(tmp_path / "nowhere", tmp_path / "nothing", llm="m", prompts=str(tmp_path / "mine"), refine=1)
    for bad in (-1, True, 1.5):
        with pytest.raises(InputError, match=r"refine must be a whole number"):
            RunOptions(refine=bad)


def test_cli_compare_refine_records_every_round(image_dirs, fake_openai, tiny_clip_weights, tmp_path):
    def respond(request):
        content = request.body["messages"][-1]["content"]
        if isinstance(content, list):  # a captioning request
            return Reply("a small square photo")
        return Reply(f"* phrase {len(fake_openai.requests)}")  # a new phrase every time

    fake_openai.respond = respond
    out = tmp_path / "out"
    result = run_cli("compare", *map(str, image_dirs), "--captioner", "openai:fake-vision",
                                 "--llm", "fake-model", "--base-url", fake_openai.base_url, "--scorer", tiny_clip_weights,
                                 "--rounds", "1", "--samples", "3", "--refine", "2", "--out", str(out), "-q",
                                 "--no-merge")  # the random text encoder finds "phrase N"s alike
    assert result.exit_code == 0, result.output
    saved = json.loads((out / "results.json").read_text())
    assert saved["config"]["options"]["refine"] == 2
    refinements = [r for r in saved["proposal_rounds"] if r.get("kind") == "refine"]
    assert 1 <= len(refinements) <= 2
    asked = [r for r in fake_openai.requests if isinstance(r.body["messages"][-1]["content"], str)
             and "AUROC" in r.last_user_text]
    assert len(asked) == sum(r["llm_calls"] for r in refinements)
    proposed = {row["hypothesis"] for row in saved["results"]}
    assert {p for r in refinements for p in r["new_phrases"]} <= proposed  # ranked with the rest
    for r in refinements[:-1]:  # every round but the last improved the best AUROC
        assert r["best_auroc_after"] > r["best_auroc_before"]


def test_a_vision_proposer_refines_from_captions_with_seeds_after_its_rounds(fake_openai):
    fake_openai.replies.append(Reply("* cats on sofas"))
    proposer = create_proposer("vlm:vision-model", base_url=fake_openai.base_url, rounds=2, prompts="paper")
    asked = proposer.refine(hypotheses=[("dogs", 0.613)], captions_a={"k1": "a cat  on a sofa"}, captions_b={},
                            seed=3, round_index=0)
    [request] = fake_openai.requests
    assert request.body["seed"] == 3 * 1000 + 2  # never the seed of a proposal round
    assert request.body["messages"][0]["role"] == "system"  # the paper set's system message
    text = request.last_user_text
    assert "- dogs (AUROC 0.61)" in text and "- a cat on a sofa" in text and "(none)" in text
    assert asked["prompt"]["prompt"] == "refine" and asked["prompt"]["prompt_set"] == "paper"
    assert asked["requests"][0]["phrases"] == ["cats on sofas"]


def test_a_rounds_captions_of_both_sets_are_asked_in_one_captioning_call(dark_and_bright, fake_openai,
                                                                        offline_models, monkeypatch):
    from visdiff.captioning import Captioning

    calls = []
    caption = Captioning.caption

    def recording(self, image_set):
        calls.append(image_set.keys)
        return caption(self, image_set)

    monkeypatch.setattr(Captioning, "caption", recording)
    # One image swapped between the sets: "dark photos" leaves A's bright one unexplained and
    # finds B's dark one alike, so a refinement round shows images of both sets.
    a, b = dark_and_bright
    (a / "0.png").rename(b / "from_a.png")
    (b / "0.png").rename(a / "from_b.png")
    fake_openai.respond = lambda request: Reply("* bright photos" if "AUROC" in request.last_user_text
                                                else "* dark photos")
    result = run(dark_and_bright, fake_openai, offline_models, refine=1)
    [record] = [r for r in result.proposal_rounds if r.get("kind") == "refine"]
    shown_a, shown_b = [im["key"] for im in record["images_a"]], [im["key"] for im in record["images_b"]]
    assert shown_a and shown_b
    assert calls.count(shown_a + shown_b) == 1 and shown_a not in calls and shown_b not in calls
    # Split back by key: each set's captions, in its order.
    assert list(record["captions_a"]) == shown_a and list(record["captions_b"]) == shown_b


def test_a_chat_captioner_gets_both_sets_shown_images_through_its_pool(fake_openai, tmp_path):
    from PIL import Image

    from visdiff.cache_root import CacheRoot
    from visdiff.captioning import Captioning
    from visdiff.image_sets import ImageItem, ImageSet
    from visdiff.llm import RequestPool
    from visdiff.refine import _captions

    def item(i: int) -> ImageItem:
        return ImageItem(key=f"k{i}", source=f"{i}.png", image=Image.new("RGB", (8, 8), (20 * i, 0, 0)))

    fake_openai.respond = lambda request: Reply(f"caption {len(fake_openai.requests)}", delay=0.05)
    shown_a, shown_b = ImageSet((item(0), item(1)), name="A"), ImageSet((item(2), item(1), item(3)), name="B")
    captioning = Captioning("openai:vision", cache=CacheRoot(tmp_path), base_url=fake_openai.base_url,
                            llm_pool=RequestPool(8), show_progress=False)
    captions_a, captions_b = _captions(captioning, shown_a, shown_b)
    assert list(captions_a) == ["k0", "k1"] and list(captions_b) == ["k2", "k1", "k3"]
    assert captions_a["k1"] == captions_b["k1"]  # an image shown on both sides is captioned once
    assert len(fake_openai.requests) == 4 and fake_openai.max_in_flight > 1
