"""Prompt files: loading by name or path, hashing, rendering."""

from __future__ import annotations

import hashlib

import pytest

from visdiff import load_prompt
from visdiff.errors import BackendError
from visdiff.prompts import _prompt_dirs, list_prompts


def test_builtin_prompts_load_with_their_hash():
    assert {"caption", "propose", "propose_retry", "propose_vlm"} <= set(list_prompts())
    prompt = load_prompt("propose")
    assert prompt.name == "propose"
    assert prompt.sha256 == hashlib.sha256(prompt.text.encode("utf-8")).hexdigest()


def test_packaged_location_is_the_repo_folder():
    # visdiff/prompts links to the top-level prompts/, so wheels carry the files as package data.
    dirs = [d.resolve() for d in _prompt_dirs()]
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
