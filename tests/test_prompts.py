"""Prompt files: loading by name or path, hashing, rendering."""

from __future__ import annotations

import hashlib

import pytest

from visdiff import load_prompt
from visdiff.errors import BackendError, InputError
from visdiff.prompts import _prompt_roots, get_prompt_set, list_prompt_sets, list_prompts

USED = {"caption", "judge", "propose", "propose_paired", "propose_retry", "propose_vlm", "refine"}


def test_builtin_prompts_load_with_their_hash():
    assert USED <= set(list_prompts())
    prompt = load_prompt("propose")
    assert prompt.name == "propose" and prompt.prompt_set == "strict"
    assert prompt.sha256 == hashlib.sha256(prompt.text.encode("utf-8")).hexdigest()


def test_both_prompt_sets_hold_every_prompt_the_pipeline_uses():
    assert {"paper", "strict"} <= set(list_prompt_sets())
    assert USED | {"system"} <= set(list_prompts("paper"))
    assert "system" not in list_prompts("strict")  # visdiff's own requests send no system message
    # The caption prompt is the paper's in both sets (same text, same caption cache).
    assert load_prompt("caption", "paper").text == load_prompt("caption", "strict").text
    for name in USED - {"caption"}:
        assert load_prompt(name, "paper").sha256 != load_prompt(name, "strict").sha256


def test_paper_propose_prompt_has_the_references_semantics():
    text = load_prompt("propose", "paper").render(captions="Group A: a dog\nGroup B: a cat", n_hypotheses=10)
    assert "more likely to be true of the Group A images than of the Group B images" in text  # relative
    assert "distribution shift" in text
    assert "wrong:" in text and "fixed:" in text  # worked bad examples with corrections
    assert '"a cat sitting beside a dog"' in text  # relational phrases are fine
    assert "Never join" not in text and "No comparisons" not in text
    strict = load_prompt("propose", "strict").text
    assert "typical of the Group A images but not of the Group B images" in strict  # exclusive
    assert "Never join two ideas" in strict


def test_paper_judge_asks_about_agreement_with_group_a():
    text = load_prompt("judge", "paper").render(name_a="dogs", name_b="cats", hypothesis="puppies")
    assert "agrees with the description of Group A" in text and "Prediction: puppies" in text


def test_a_template_saved_with_a_byte_order_mark(tmp_path):
    (tmp_path / "propose.txt").write_bytes("\ufeffGive $n_hypotheses ideas.".encode("utf-8"))
    assert load_prompt("propose", str(tmp_path)).render(n_hypotheses=3) == "Give 3 ideas."


def test_a_folder_is_a_prompt_set_and_a_missing_file_is_named(tmp_path):
    (tmp_path / "propose.txt").write_text("Give $n_hypotheses ideas.")
    prompt = load_prompt("propose", str(tmp_path))
    assert prompt.prompt_set == str(tmp_path) and prompt.render(n_hypotheses=3) == "Give 3 ideas."
    with pytest.raises(InputError, match=r"has no judge.txt"):
        get_prompt_set(str(tmp_path)).load("judge")


def test_unknown_prompt_set_lists_the_choices():
    with pytest.raises(InputError, match=r"unknown prompt set 'nope'; choose one of: paper, strict"):
        get_prompt_set("nope")


def test_packaged_location_is_the_repo_folder():
    # visdiff/prompts links to the top-level prompts/, so wheels carry the files as package data.
    dirs = [d.resolve() for d in _prompt_roots()]
    assert len(set(dirs)) == 1 and dirs[0].name == "prompts"


def test_propose_prompt_renders_every_field():
    text = load_prompt("propose").render(captions_a="- a dog", captions_b="- a cat", n_hypotheses=7)
    assert "- a dog" in text and "- a cat" in text and "Give 7 such concepts" in text
    assert "$" not in text


def test_missing_field_is_named():
    with pytest.raises(BackendError, match=r"needs the field \$captions_b"):
        load_prompt("propose").render(captions_a="x", n_hypotheses=3)


def test_prompt_from_a_file(tmp_path):
    path = tmp_path / "mine.txt"
    path.write_text("List $n_hypotheses things, costs $$5.")
    prompt = load_prompt(str(path))
    assert prompt.render(n_hypotheses=2) == "List 2 things, costs $5."
    path.write_text("changed")
    assert load_prompt(str(path)).sha256 != prompt.sha256


def test_unknown_prompt_lists_choices():
    with pytest.raises(BackendError, match="unknown prompt 'nope'.*propose"):
        load_prompt("nope")
