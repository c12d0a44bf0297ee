"""docs/architecture.md stays short and true to the code: every name it lists resolves.

A list item of the doc that starts with a backticked name (``- `pipeline.compare`: ...``, its
continuation lines included) names only real things: each backticked name that is a dotted
Python name resolves as ``visdiff.<name>`` (the longest importable module prefix, then
attributes along the rest). Every ``visdiff/...py`` path in the doc exists, and so does every
``visdiff/.../`` folder.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "architecture.md"
MAX_LINES = 130  # a page to read at once: room for the modes added on 2026-12-06 (serve, values, rare), no more

ITEM_START = re.compile(r"^\s*- `")
CONTINUATION = re.compile(r"^\s+\S")
LIST_ITEM = re.compile(r"^\s*- ")
BACKTICKED = re.compile(r"`([^`\n]+)`")
DOTTED_NAME = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*")
PY_PATH = re.compile(r"(?<![\w/.-])visdiff/[\w/.-]*?\.py\b")
FOLDER = re.compile(r"(?<![\w/.-])visdiff/(?:[\w.-]+/)+(?![\w.])")

FLOWS = ("## `visdiff compare", "## `visdiff rank", "## `visdiff embed")
# Steps of `visdiff compare` that the doc must give in this order.
COMPARE_ORDER = ("cli.compare.compare_command", "cli.options.SetInputs.load", "pipeline.compare",
                 "comparison.Comparison.of_stages", "embeddings.scoring.Scoring.embed_sets",
                 "comparison.Comparison.compare", "ranking.rank_directions", "stats.summary_stats",
                 "report.write_outputs")


def doc_lines() -> list[str]:
    return DOC.read_text(encoding="utf-8").splitlines()


def name_items(lines: list[str]) -> list[str]:
    """The list items that start with a backticked name, each with its continuation lines."""
    items: list[str] = []
    current: list[str] | None = None
    for line in lines:
        if ITEM_START.match(line):
            current = [line]
            items.append("")
        elif current is not None and CONTINUATION.match(line) and not LIST_ITEM.match(line):
            current.append(line)
        else:
            current = None
            continue
        items[-1] = " ".join(part.strip() for part in current)
    return items


def listed_names(lines: list[str]) -> list[str]:
    names = []
    for item in name_items(lines):
        for text in BACKTICKED.findall(item):
            if DOTTED_NAME.fullmatch(text) and text not in names:
                names.append(text)
    return names


def section(lines: list[str], heading: str) -> list[str]:
    """The lines under the ``## `` heading starting with ``heading``, up to the next one."""
    start = next(i for i, line in enumerate(lines) if line.startswith(heading))
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    return lines[start + 1:end]


def resolve(name: str):
    """``visdiff.<name>``: the longest importable module prefix, then attributes along the rest."""
    parts = f"visdiff.{name}".split(".")
    for cut in range(len(parts), 0, -1):
        module_name = ".".join(parts[:cut])
        try:
            found = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            # Only this name (or a prefix of it) is no module; a module failing to import is an error.
            if not (error.name and f"{module_name}.".startswith(f"{error.name}.")):
                raise
            continue
        for attribute in parts[cut:]:
            found = getattr(found, attribute)  # AttributeError names what the doc got wrong
        return found
    raise AssertionError(f"nothing of {name!r} imports")


def test_doc_is_short():
    assert len(doc_lines()) <= MAX_LINES, f"{DOC.name} has {len(doc_lines())} lines; keep it to {MAX_LINES}"


@pytest.mark.parametrize("heading", FLOWS)
def test_each_flow_lists_steps(heading):
    steps = [n for item in name_items(section(doc_lines(), heading)) for n in BACKTICKED.findall(item)
             if DOTTED_NAME.fullmatch(n)]
    command = heading.split()[-1]
    assert steps and steps[0] == f"cli.{command}.{command}_command", steps[:3]


def test_compare_flow_is_in_order():
    text = "\n".join(section(doc_lines(), FLOWS[0]))
    positions = [text.find(f"`{name}`") for name in COMPARE_ORDER]
    assert -1 not in positions, [n for n, p in zip(COMPARE_ORDER, positions) if p == -1]
    assert positions == sorted(positions), sorted(zip(positions, COMPARE_ORDER))


def test_parsing_finds_names_and_paths():
    """The checks below check something: the doc's lists and paths are found."""
    assert len(listed_names(doc_lines())) > 100
    assert len(set(PY_PATH.findall(DOC.read_text(encoding="utf-8")))) > 10


@pytest.mark.parametrize("name", listed_names(doc_lines()))
def test_listed_name_resolves(name):
    assert resolve(name) is not None


def test_paths_exist():
    text = DOC.read_text(encoding="utf-8")
    missing = [p for p in sorted(set(PY_PATH.findall(text))) if not (ROOT / p).is_file()]
    missing += [p for p in sorted(set(FOLDER.findall(text))) if not (ROOT / p).is_dir()]
    assert not missing, f"{DOC.name} names paths that do not exist: {missing}"
