"""JSON-ready copies of results: one conversion for results.json, the CLI's --json and bench lines."""

from __future__ import annotations

import math
import os
from dataclasses import asdict, is_dataclass
from enum import Enum

import numpy as np


def to_jsonable(value):
    """``value`` with numpy scalars/arrays, dataclasses, enums, paths and tuples made JSON types,
    non-finite floats ``None`` (JSON has no NaN); anything else is returned as is, so
    ``json.dumps`` still refuses what has no JSON form."""
    if is_dataclass(value) and not isinstance(value, type):
        return to_jsonable(asdict(value))
    if isinstance(value, Enum):
        return to_jsonable(value.value)
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, np.generic):
        return to_jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value
