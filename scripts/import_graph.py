"""The import graph of ``visdiff``: its import circles and its arrows back up the layers.

Reads every ``visdiff/**/*.py`` with :mod:`ast` (nothing is imported) and follows each import
of a ``visdiff`` module: at module level, inside a function ("lazy": a dependency all the same,
only a later one) and under ``if TYPE_CHECKING:`` ("typing": the types are a dependency too).
A module's import of its own package (``from visdiff import __version__``, ``from visdiff.cli
import app`` in ``cli/compare.py``) is left out: Python runs a package's ``__init__`` before any
module in it anyway, so it adds no dependency. Run:

    python scripts/import_graph.py [--root visdiff]
"""

from __future__ import annotations

import argparse
import ast
import sys
from dataclasses import dataclass
from pathlib import Path

PACKAGE = "visdiff"

# The layers, lowest first: a module may import its own layer and the layers below it. A
# module belongs to the layer of the longest prefix naming it (``embeddings.cache`` before
# ``embeddings``); the package itself (``visdiff/__init__.py``: the public names) is the top.
# Each module is where its own imports put it: ``options`` checks stage specs against the
# backend registries, so it sits with the models; ``sweep`` writes a folder of reports, so it
# sits above them with the command line.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    # plain helpers and settings: no images, no models
    ("base", ("errors", "atomic", "jsonable", "timing", "progress", "registry", "devices", "redaction",
              "prompts", "profiles", "purity", "score_summary", "stats", "stats_torch", "ranking", "runlog",
              "correlation_stats", "tail_stats", "value_ranking", "rare_ranking", "outliers")),
    # images, tables and what is stored about them (the embedding store is storage, not a model)
    ("data", ("decoding", "image_sets", "sources", "tables", "pairs", "file_hashes", "textcache",
              "embeddings.cache", "cache_root", "holdout", "concepts")),
    # models, what runs them, and the options of a run (specs checked against the registries)
    ("models", ("scorers", "captioners", "proposers", "llm", "engines", "embeddings", "captioning", "options", "hub")),
    # what a comparison returns and how it shows itself (text, Jupyter HTML)
    ("results", ("result", "evidence", "html_templates", "value_result")),
    # the stages put together
    ("pipeline", ("stages", "comparison", "refine", "multi", "pipeline", "rare", "value_comparison", "plan")),
    # files written for people, and runs recorded in experiment trackers (the report as an artifact)
    ("presentation", ("report", "trackers")),
    # ways in: the command line, the module entry point, the public names; sweeps of reports;
    # the web app of `visdiff serve`
    ("entry", ("cli", "entry", "__main__", "", "sweep", "serve")),
]


@dataclass(frozen=True)
class Import:
    """``importer`` imports ``imported`` (module names without the ``visdiff.`` prefix)."""

    importer: str
    imported: str
    line: int
    kind: str  # "module" (at import), "lazy" (inside a function) or "typing" (TYPE_CHECKING only)

    def __str__(self) -> str:
        return f"{self.importer} -> {self.imported} (line {self.line}{'' if self.kind == 'module' else ', ' + self.kind})"


def module_names(root: Path) -> dict[str, Path]:
    """Each module's dotted name below the package (``""`` for the package itself) and its file."""
    names = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imported_names(node: ast.Import | ast.ImportFrom, importer: str, is_package: bool) -> list[str]:
    """Full dotted names a statement imports: modules, and ``module.name`` for each name taken
    from a module (which is a submodule when one by that name exists)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:  # relative: from the importer's package, one level up per extra dot
        package = f"{PACKAGE}.{importer}".rstrip(".").split(".")
        base = package if is_package else package[:-1]
        base = base[: len(base) - node.level + 1]
        module = ".".join([*base, node.module] if node.module else base)
    else:
        module = node.module or ""
    return [module] + [f"{module}.{alias.name}" for alias in node.names]


def _resolve(dotted: str, modules: dict[str, Path]) -> str | None:
    """The visdiff module a dotted name is, or lies in; None outside the package."""
    if dotted != PACKAGE and not dotted.startswith(PACKAGE + "."):
        return None
    name = dotted.removeprefix(PACKAGE).removeprefix(".")
    while name not in modules:
        name = name.rpartition(".")[0]
    return name


def _encloses(package: str, module: str) -> bool:
    """``module`` is ``package`` or lies in it (``""`` is the whole package)."""
    return package == module or package == "" or module.startswith(package + ".")


def imports_of(importer: str, path: Path, modules: dict[str, Path]) -> list[Import]:
    """The visdiff modules one file imports, each once per statement, itself left out."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[Import] = []

    def visit(node: ast.AST, kind: str) -> None:
        if isinstance(node, ast.If) and _type_checking_only(node):
            for child in node.body:
                visit(child, "typing")
            for child in node.orelse:
                visit(child, kind)
            return
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            is_package = path.name == "__init__.py"
            targets = {_resolve(name, modules) for name in _imported_names(node, importer, is_package)}
            # "from visdiff.x import y" names both x and x.y: the submodule, when y is one, says more
            if isinstance(node, ast.ImportFrom) and len(targets) > 1:
                targets.discard(_resolve(_imported_names(node, importer, is_package)[0], modules))
            found.extend(Import(importer, target, node.lineno, kind)
                         for target in sorted(t for t in targets if t is not None and not _encloses(t, importer)))
            return
        in_function = isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        for child in ast.iter_child_nodes(node):
            visit(child, "lazy" if in_function and kind == "module" else kind)

    visit(tree, "module")
    return found


def import_graph(root: Path) -> list[Import]:
    """Every import of a visdiff module by a visdiff module under ``root``."""
    modules = module_names(root)
    return [edge for name, path in modules.items() for edge in imports_of(name, path, modules)]


def layer_of(module: str) -> int:
    """The index in :data:`LAYERS` of the longest prefix naming ``module``."""
    best, best_length = None, -1
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            matches = module == prefix or (prefix and module.startswith(prefix + "."))
            if matches and len(prefix) > best_length:
                best, best_length = index, len(prefix)
    if best is None:
        raise ValueError(f"{PACKAGE}.{module} is in no layer: add it to LAYERS in {__file__}")
    return best


def arrows_back_up(edges: list[Import]) -> dict[tuple[str, str], list[Import]]:
    """Imports from a lower layer of a higher one, by (importer, imported): one arrow per pair."""
    arrows: dict[tuple[str, str], list[Import]] = {}
    for edge in edges:
        if layer_of(edge.importer) < layer_of(edge.imported):
            arrows.setdefault((edge.importer, edge.imported), []).append(edge)
    return arrows


def import_circles(edges: list[Import]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm), each sorted."""
    graph: dict[str, set[str]] = {}
    for edge in edges:
        graph.setdefault(edge.importer, set()).add(edge.imported)
        graph.setdefault(edge.imported, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def connect(node: str) -> None:  # recursion depth: the longest import chain, a few dozen
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph[node]):
            if other not in index:
                connect(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while not component or component[-1] != node:
                component.append(stack.pop())
                on_stack.discard(component[-1])
            if len(component) > 1:
                circles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return sorted(circles)


def circle_edges(circle: list[str], edges: list[Import]) -> list[Import]:
    """The imports that keep a circle closed."""
    members = set(circle)
    return [edge for edge in edges if edge.importer in members and edge.imported in members]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1] / PACKAGE)
    args = parser.parse_args(argv)
    edges = import_graph(args.root)
    circles = import_circles(edges)
    arrows = arrows_back_up(edges)
    kinds = {kind: sum(edge.kind == kind for edge in edges) for kind in ("lazy", "typing")}
    print(f"{len(edges)} imports ({kinds['lazy']} lazy, {kinds['typing']} typing), "
          f"{len(circles)} import circles, {len(arrows)} arrows back up")
    for circle in circles:
        print(f"\ncircle: {' <-> '.join(circle)}")
        for edge in circle_edges(circle, edges):
            print(f"  {edge}")
    if arrows:
        print("\narrows back up (layer -> higher layer):")
    for (importer, imported), pair in arrows.items():
        print(f"  {importer} -> {imported} [{LAYERS[layer_of(importer)][0]} -> {LAYERS[layer_of(imported)][0]}]: "
              f"{', '.join(str(edge).partition(' (')[2].rstrip(')') for edge in pair)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
