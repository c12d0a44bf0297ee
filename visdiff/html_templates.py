"""The jinja2 environment of every page visdiff renders (``report.html``, the sweep index, the
Jupyter display of results), with the filters its templates use.

Autoescaping is on for every template: hypotheses, file names and captions are text, never
markup. The templates stay in ``visdiff/report/templates`` and are loaded as files of the
``visdiff`` package, so rendering a result in Jupyter does not import the report writers.
"""

from __future__ import annotations

import math

from visdiff.ranking import format_p_value
from visdiff.stats import AUROC_INTERVAL_METHOD

CONSTANT_NOTE = "same score on every image: the scorer saw nothing of this phrase"


def fmt_number(value, digits: int = 3) -> str:
    """Fixed decimals, or 'n/a' for missing/non-finite values."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value:.{digits}f}"


def auroc_interval(row: dict) -> str:
    """``low–high``, the 95% interval of the row's AUROC, or 'n/a' for a table without one."""
    low, high = row.get("auroc_low"), row.get("auroc_high")
    return "n/a" if low is None or high is None else f"{fmt_number(low)}–{fmt_number(high)}"


def why_apart(row: dict) -> str:
    """Why a row is not "more true of" the set it was proposed for."""
    if row["constant"]:
        return CONSTANT_NOTE
    if row["favours"] == "neither":
        return "the scores favour neither set"
    return f"the scores favour {row['favours']}"


def environment():
    import jinja2  # only when a page is rendered: importing results stays light

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("visdiff", "report/templates"),
        autoescape=True,  # every {{ }} is HTML-escaped, whatever the template name
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(num=fmt_number, p=format_p_value, interval=auroc_interval, why_apart=why_apart)
    env.globals.update(interval_method=AUROC_INTERVAL_METHOD)
    return env
