"""The import graph of visdiff (scripts/import_graph.py): no import circles, at most two
imports from a lower layer of a higher one."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAX_ARROWS_BACK_UP = 2


@pytest.fixture(scope="module")
def import_graph():
    spec = importlib.util.spec_from_file_location("import_graph", ROOT / "scripts" / "import_graph.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def edges(import_graph):
    return import_graph.import_graph(ROOT / "visdiff")


def test_no_import_circles(import_graph, edges):
    circles = import_graph.import_circles(edges)
    assert circles == [], "\n".join(
        f"{' <-> '.join(circle)}: " + "; ".join(map(str, import_graph.circle_edges(circle, edges)))
        for circle in circles)


def test_at_most_two_arrows_back_up(import_graph, edges):
    arrows = import_graph.arrows_back_up(edges)
    assert len(arrows) <= MAX_ARROWS_BACK_UP, "\n".join(
        f"{importer} -> {imported}: " + "; ".join(map(str, pair)) for (importer, imported), pair in arrows.items())


def test_every_module_has_a_layer(import_graph):
    for name in import_graph.module_names(ROOT / "visdiff"):
        import_graph.layer_of(name)  # raises for a module in no layer


def test_finds_lazy_typing_and_relative_imports_and_their_circle(import_graph, tmp_path):
    package = tmp_path / "visdiff"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "low.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from visdiff.sub import high\n")
    (package / "sub" / "high.py").write_text("from visdiff import low\n\ndef f():\n    from .. import errors\n")
    (package / "errors.py").write_text("import visdiff.sub.high\n")
    edges = import_graph.import_graph(package)
    assert sorted((e.importer, e.imported, e.kind) for e in edges) == [
        ("errors", "sub.high", "module"), ("low", "sub.high", "typing"),
        ("sub.high", "errors", "lazy"), ("sub.high", "low", "module"),
    ]
    assert import_graph.import_circles(edges) == [["errors", "low", "sub.high"]]
