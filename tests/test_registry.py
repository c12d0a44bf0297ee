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
    with pytest.raises(ValueError, match="already registered"):
        registry.declare("alpha", "json:dumps")


def test_declared_backend_is_listed_unimported_and_imported_when_built():
    registry: Registry[str] = Registry("widget")
    registry.declare("dumps", "json:dumps")
    registry.declare("ghost", "visdiff_no_such_module:create")
    # Listing never imports: the missing module fails only when its backend is built.
    assert registry.names() == ["dumps", "ghost"]
    assert registry.create("dumps:x") == '"x"'
    with pytest.raises(ModuleNotFoundError, match="visdiff_no_such_module"):
        registry.create("ghost")


def test_declare_needs_a_module_and_factory_path():
    with pytest.raises(ValueError, match="widget backend 'alpha': expected 'module:factory', got 'json'"):
        Registry("widget").declare("alpha", "json")


def test_capabilities_are_declared_at_registration_and_queried_by_name():
    registry: Registry[str] = Registry("widget", capabilities=("fast", "cheap"))
    registry.declare("alpha", "json:dumps", fast=True)
    registry.register("beta", fast=False, cheap=True)(lambda model: model)
    registry.register("gamma")(lambda model: model)
    assert [registry.has("alpha", "fast"), registry.has("beta", "fast"), registry.has("beta", "cheap")] == \
        [True, False, True]
    assert registry.names_with("fast") == ["alpha"] and registry.names_with("cheap") == ["beta"]
    # A built object's backend may be unregistered or unknown (None): it declares nothing.
    assert not registry.has("delta", "fast") and not registry.has(None, "fast")


def test_unknown_capability_is_refused_when_declared_or_asked():
    registry: Registry[str] = Registry("widget", capabilities=("fast",))
    with pytest.raises(ValueError, match="widget backends have no capability 'fsat'; known: fast"):
        registry.declare("alpha", "json:dumps", fsat=True)
    with pytest.raises(ValueError, match="no capability 'fsat'"):
        registry.register("alpha", fsat=True)
    with pytest.raises(ValueError, match="no capability 'fsat'"):
        registry.has("alpha", "fsat")
    with pytest.raises(ValueError, match="no capability 'fast'; known: none"):
        Registry("widget").names_with("fast")


def test_scorer_registry_has_open_clip_and_rejects_unknown():
    assert "open_clip" in list_scorers()
    with pytest.raises(InputError, match="unknown scorer backend 'nope' in 'nope'; choose one of: .*open_clip"):
        create_scorer("nope")


def test_require_names_the_extra_to_install():
    with pytest.raises(BackendError, match=r"needs the 'visdiff_no_such_module' package: pip install 'visdiff\[llm\]'"):
        require("visdiff_no_such_module", "llm")
    assert require("json", "core").dumps([1]) == "[1]"
