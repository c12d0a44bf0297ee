"""Backend registries and ``backend:model`` specs."""

from __future__ import annotations

import pytest

from visdiff import create_scorer, list_scorers
from visdiff.errors import BackendError, InputError
from visdiff.registry import Registry, Spec, parse_spec, require


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("open_clip:ViT-B-32:laion2b_s34b_b79k", Spec("open_clip", "ViT-B-32:laion2b_s34b_b79k")),
        ("open_clip:ViT-B-32:/models/w.pt", Spec("open_clip", "ViT-B-32:/models/w.pt")),
        ("open_clip:hf-hub:org/repo", Spec("open_clip", "hf-hub:org/repo")),
        ("offline", Spec("offline", "")),
        ("  llm : gpt-4o ", Spec("llm", "gpt-4o")),
    ],
)
def test_parse_spec_splits_on_the_first_colon(text, spec):
    assert parse_spec(text) == spec
    assert str(parse_spec(str(spec))) == str(spec)


@pytest.mark.parametrize("bad", ["", "   ", None, 3])
def test_parse_spec_rejects_empty_or_non_strings(bad):
    with pytest.raises(InputError, match="empty backend spec"):
        parse_spec(bad)


def test_registry_creates_by_name_and_passes_model_and_options():
    registry: Registry[tuple] = Registry("widget")

    @registry.register("echo")
    def echo(model: str, **options) -> tuple:
        return model, options

    assert registry.names() == ["echo"]
    assert registry.create("echo:big:v2", size=3) == ("big:v2", {"size": 3})
    assert registry.create(Spec("echo", "")) == ("", {})


def test_unknown_backend_lists_choices():
    registry: Registry[str] = Registry("widget")
    registry.register("alpha")(lambda model: model)
    registry.register("beta")(lambda model: model)
    with pytest.raises(InputError, match=r"unknown widget backend 'gamma' in 'gamma:x'; choose one of: alpha, beta"):
        registry.create("gamma:x")


def test_duplicate_registration_is_refused():
    registry: Registry[str] = Registry("widget")
    registry.register("alpha")(lambda model: model)
    with pytest.raises(ValueError, match="already registered"):
        registry.register("alpha")(lambda model: model)


def test_scorer_registry_has_open_clip_and_rejects_unknown():
    assert "open_clip" in list_scorers()
    with pytest.raises(InputError, match="unknown scorer backend 'nope' in 'nope'; choose one of: .*open_clip"):
        create_scorer("nope")


def test_require_names_the_extra_to_install():
    with pytest.raises(BackendError, match=r"needs the 'visdiff_no_such_module' package: pip install 'visdiff\[llm\]'"):
        require("visdiff_no_such_module", "llm")
    assert require("json", "core").dumps([1]) == "[1]"
