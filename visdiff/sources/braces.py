"""Brace expansion of shard patterns, as the shell and WebDataset do it:
``shards-{000..002}.tar`` -> ``shards-000.tar shards-001.tar shards-002.tar``,
``{train,val}-{0..1}.tar`` -> four names. Braces holding neither a comma nor a range are kept."""

from __future__ import annotations

import re

_RANGE = re.compile(r"(-?\d+)\.\.(-?\d+)")


def has_braces(pattern: str) -> bool:
    return expand_braces(pattern) != [pattern]


def expand_braces(pattern: str) -> list[str]:
    """Every name ``pattern`` stands for, in order (the leftmost braces vary slowest)."""
    start = pattern.find("{")
    while start != -1:
        end = _closing(pattern, start)
        if end == -1:
            break
        choices = _choices(pattern[start + 1:end])
        if choices is not None:
            rests = expand_braces(pattern[end + 1:])
            return [pattern[:start] + choice + rest for choice in choices for rest in rests]
        start = pattern.find("{", start + 1)
    return [pattern]


def _closing(pattern: str, start: int) -> int:
    """Position of the brace closing the one at ``start``, or -1."""
    depth = 0
    for position in range(start, len(pattern)):
        depth += {"{": 1, "}": -1}.get(pattern[position], 0)
        if depth == 0:
            return position
    return -1


def _choices(body: str) -> list[str] | None:
    """What ``{body}`` expands to: comma alternatives (each expanded), a numeric range, or
    None when the braces are literal."""
    alternatives = _split_top_level(body)
    if len(alternatives) > 1:
        return [name for alternative in alternatives for name in expand_braces(alternative)]
    bounds = _RANGE.fullmatch(body)
    if bounds is None:
        return None
    first, last = bounds.groups()
    # A leading zero on either end pads every number to the longer end's width, as bash does.
    padded = any(len(end.lstrip("-")) > 1 and end.lstrip("-").startswith("0") for end in (first, last))
    width = max(len(first), len(last)) if padded else 0
    step = 1 if int(last) >= int(first) else -1
    return [f"{n:0{width}d}" for n in range(int(first), int(last) + step, step)]


def _split_top_level(body: str) -> list[str]:
    """``body`` split at the commas outside nested braces."""
    parts, depth, start = [], 0, 0
    for position, char in enumerate(body):
        depth += {"{": 1, "}": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(body[start:position])
            start = position + 1
    return [*parts, body[start:]]
