"""Token usage of a run's LLM calls, per stage and model, and what it costs.

Each request's ``usage`` (prompt and completion tokens, as the endpoint reports them) is
counted under its stage (:data:`STAGES`) and model; an answer served from the cache is counted
apart (``cached``): it sent nothing and costs nothing. :func:`usage_record` adds the cost
estimate from a :class:`~visdiff.llm.prices.PriceTable`: results, bench lines and sweeps record it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import asdict, dataclass

from visdiff.llm.prices import PriceTable

# In pipeline order; a client built without a stage counts under "other", listed after them.
STAGES = ("captioning", "proposing", "refining", "ranking", "judging")
COUNTS = ("requests", "cached", "prompt_tokens", "completion_tokens")


@dataclass
class StageUsage:
    """Requests sent, answers from the cache, and the tokens the requests used."""

    requests: int = 0
    cached: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0


class TokenUsage:
    """Counts per (stage, model), safe to add to from the threads of a :class:`RequestPool`.
    A pool counts into its own, or into the one its caller's context selected
    (``RequestPool.counting_into``: a benchmark pair's, wherever its judging runs)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str], StageUsage] = {}

    def add_request(self, stage: str, model: str, *, prompt_tokens: int, completion_tokens: int) -> None:
        with self._lock:
            counts = self._counts.setdefault((stage, model), StageUsage())
            counts.requests += 1
            counts.prompt_tokens += prompt_tokens
            counts.completion_tokens += completion_tokens

    def add_cached(self, stage: str, model: str) -> None:
        with self._lock:
            self._counts.setdefault((stage, model), StageUsage()).cached += 1

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()

    def rows(self) -> list[dict]:
        """One row per stage and model (``stage``, ``model`` and :data:`COUNTS`), stages in
        pipeline order."""
        with self._lock:
            counts = dict(self._counts)
        return [{"stage": stage, "model": model, **asdict(counts[stage, model])}
                for stage, model in sorted(counts, key=_stage_order)]


def _stage_order(key: tuple[str, str]) -> tuple[int, str, str]:
    stage, model = key
    return (STAGES.index(stage) if stage in STAGES else len(STAGES), stage, model)


def summed_rows(rows: Iterable[dict]) -> list[dict]:
    """Rows of several units (a benchmark's pairs, a sweep's values) summed per stage and model."""
    totals: dict[tuple[str, str], dict] = {}
    for row in rows:
        total = totals.setdefault((row["stage"], row["model"]), dict.fromkeys(COUNTS, 0))
        for name in COUNTS:
            total[name] += row[name]
    return [{"stage": stage, "model": model, **totals[stage, model]} for stage, model in sorted(totals, key=_stage_order)]


def units_usage(records: Iterable[dict], prices: PriceTable) -> dict:
    """The :func:`usage_record` of several units' records (benchmark pairs, swept values), each
    holding its own ``llm_usage`` (a skipped unit has none), summed per stage and model."""
    return usage_record(summed_rows(row for record in records for row in record.get("llm_usage", {}).get("by_stage", [])),
                        prices)


def usage_record(rows: list[dict], prices: PriceTable) -> dict:
    """``by_stage`` (each row with ``cost_usd``: None for a model without a price), ``total``
    (counts, ``cost_usd`` of the priced rows, ``unpriced_models``) and ``prices`` (their source)."""
    priced = []
    for row in rows:
        price = prices.price(row["model"])
        cost = price.cost(row["prompt_tokens"], row["completion_tokens"]) if price else None
        priced.append({**{name: row[name] for name in ("stage", "model", *COUNTS)}, "cost_usd": cost})
    total = {name: sum(row[name] for row in priced) for name in COUNTS}
    unpriced = sorted({row["model"] for row in priced if row["cost_usd"] is None and row["requests"]})
    total["cost_usd"] = sum(row["cost_usd"] or 0.0 for row in priced)
    total["unpriced_models"] = unpriced
    return {"by_stage": priced, "total": total, "prices": prices.describe()}


def usage_line(record: dict) -> str:
    """One line for the terminal: requests, cached answers, tokens, cost estimate.

    >>> usage_line(usage_record([{"stage": "judging", "model": "gpt-4o", "requests": 3, "cached": 1,
    ...                           "prompt_tokens": 1200, "completion_tokens": 3}], PriceTable()))
    'LLM: 3 requests (+1 cached, free), 1,200 tokens in, 3 out; estimated cost $0.0030 (list prices of 2025-05)'
    """
    total = record["total"]
    line = (f"LLM: {total['requests']:,} requests (+{total['cached']:,} cached, free), "
            f"{total['prompt_tokens']:,} tokens in, {total['completion_tokens']:,} out")
    prices = record["prices"]
    source = "list prices of " + prices["built_in_as_of"] + (" and --price" if prices["given"] else "")
    unpriced = total["unpriced_models"]
    if unpriced and len(unpriced) == len({row["model"] for row in record["by_stage"] if row["requests"]}):
        return f"{line}; no price for {', '.join(unpriced)} (--price MODEL=IN/OUT)"
    missing = f", without {', '.join(unpriced)} (no price; --price MODEL=IN/OUT)" if unpriced else ""
    return f"{line}; estimated cost ${total['cost_usd']:.4f} ({source}){missing}"


def usage_rows(record: dict) -> list[tuple[str, str]]:
    """(label, text) rows for the report's settings: one per stage and model, then the total;
    none for a run without LLM calls.

    >>> usage_rows(usage_record([{"stage": "judging", "model": "m", "requests": 2, "cached": 0,
    ...                          "prompt_tokens": 10, "completion_tokens": 2}], PriceTable()))[0]
    ('LLM judging (m)', '2 requests, 0 cached, 10 tokens in, 2 out, no price')
    """
    def cost(value) -> str:
        return "no price" if value is None else f"estimated ${value:.4f}"

    rows = [(f"LLM {row['stage']} ({row['model']})",
             f"{row['requests']:,} requests, {row['cached']:,} cached, {row['prompt_tokens']:,} tokens in, "
             f"{row['completion_tokens']:,} out, {cost(row['cost_usd'])}") for row in record["by_stage"]]
    return [*rows, ("LLM total", usage_line(record).removeprefix("LLM: "))] if rows else []
