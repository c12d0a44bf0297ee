"""Terminal tables of the rankings that are not by AUROC: by value (``--score-col``: rho) and
by the tail of A above B (``--rare``)."""

from __future__ import annotations

import pandas as pd
from rich import box
from rich.table import Table
from rich.text import Text

from visdiff.cli.output import stdout
from visdiff.errors import display_text, excerpt
from visdiff.ranking import format_p_value
from visdiff.rare_ranking import TAIL_FLAG


def _shown(table: pd.DataFrame, limit: int | None, all_rows: bool, flag: str = "significant") -> tuple[pd.DataFrame, int]:
    """The rows to show (those ``flag`` marks significant unless ``all_rows``; the best row
    when none is) and how many more were tried."""
    shown = table if all_rows else table[table[flag].astype(bool)]
    if len(shown) == 0:
        shown = table.head(1)
    shown = shown if limit is None else shown.head(limit)
    return shown, len(table) - len(shown)


def _view(title: str, caption: str, columns: list[str]) -> Table:
    view = Table(title=Text(display_text(title)) if title else None, caption=caption, box=box.SIMPLE_HEAD,
                 pad_edge=False, collapse_padding=True)
    view.add_column("#", justify="right")
    view.add_column("hypothesis", ratio=1, min_width=10)
    for name in columns:
        view.add_column(name, justify="center" if name == "sig." else "right", no_wrap=True)
    return view


def _more(hidden: int, table: pd.DataFrame, all_rows: bool, flag: str = "significant") -> None:
    if not table[flag].astype(bool).any():
        stdout.print("No candidate is significant: the rows above are only the best of those tried.", highlight=False)
    if hidden and not all_rows:
        stdout.print(f"{hidden} more candidate(s) were tried; --all shows them", highlight=False)


def render_value_ranking(table: pd.DataFrame, *, title: str, limit: int | None = None, all_rows: bool = False) -> None:
    """Rows ranked by |Spearman's rho| with the value, each saying which end it describes."""
    shown, hidden = _shown(table, limit, all_rows)
    view = _view(f"{title}: ranked by |rho| with the value",
                 "rho: Spearman; CI: Fisher z, Bonett-Wright SE; p: two-sided (t, n-2 df); q: Benjamini-Hochberg",
                 ["rho (95% CI)", "more true of", "p", "q", "sig."])
    for i, row in enumerate(shown.itertuples(index=False), start=1):
        view.add_row(str(i), Text(excerpt(display_text(row.hypothesis), 200)),
                     f"{row.rho:+.3f} ({row.rho_low:+.2f}, {row.rho_high:+.2f})", row.more_true_of,
                     format_p_value(row.p_rho), format_p_value(row.q_value), "*" if row.significant else "")
    stdout.print(view)
    _more(hidden, table, all_rows)


def render_rare_ranking(table: pd.DataFrame, *, title: str, limit: int | None = None, all_rows: bool = False) -> None:
    """Rows ranked by the tail test: how much of the described set lies above the other's tail."""
    for direction in (table["direction"].unique() if "direction" in table.columns else ["A"]):
        rows = table[table["direction"] == direction] if "direction" in table.columns else table
        other = "B" if direction == "A" else "A"
        shown, hidden = _shown(rows, limit, all_rows, TAIL_FLAG)
        tail = table.attrs.get("tail", 0.01)
        view = _view(f"{title}: more true of a few images of {direction}",
                     f"tail: share of {direction} above {other}'s top {tail:.0%} (expected under the null beside it); "
                     f"p: exact (negative hypergeometric); q: Benjamini-Hochberg",
                     ["tail share", "expected", "p", "q", "sig.", "AUROC"])
        for i, row in enumerate(shown.itertuples(index=False), start=1):
            view.add_row(str(i), Text(excerpt(display_text(row.hypothesis), 200)),
                         f"{row.tail_share:.3f} ({row.tail_count})", f"{row.tail_expected:.3f}",
                         format_p_value(row.p_tail), format_p_value(row.q_tail), "*" if row.significant_tail else "",
                         f"{row.auroc:.3f}")
        stdout.print(view)
        _more(hidden, rows, all_rows, TAIL_FLAG)
