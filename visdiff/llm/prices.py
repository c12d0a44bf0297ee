"""What LLM tokens cost: a small built-in table of list prices, dated, and ``--price MODEL=IN/OUT``.

Prices are USD per million tokens, input (prompt) and output (completion). The built-in table
holds OpenAI's list prices as of :data:`PRICES_AS_OF` for the models visdiff's profiles and docs
name; prices change, so results say where each price came from, and ``--price`` replaces any.
A model in neither gets no estimate (its tokens are still counted).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from visdiff.errors import OptionValueError

PRICES_AS_OF = "2025-05"
PRICE_FORMAT = "MODEL=IN/OUT, USD per million input/output tokens (e.g. gpt-4o=2.5/10)"
_PRICE = re.compile(r"^\s*(?P<model>[^=]+?)\s*=\s*(?P<input>\d+(?:\.\d*)?|\.\d+)\s*/\s*(?P<output>\d+(?:\.\d*)?|\.\d+)\s*$")


@dataclass(frozen=True)
class Price:
    """USD per million input (prompt) and output (completion) tokens."""

    input: float
    output: float

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.input + completion_tokens * self.output) / 1e6


BUILT_IN_PRICES: dict[str, Price] = {
    "gpt-4": Price(30.0, 60.0),
    "gpt-4-turbo": Price(10.0, 30.0),
    "gpt-4o": Price(2.5, 10.0),
    "gpt-4o-mini": Price(0.15, 0.6),
    "gpt-4.1": Price(2.0, 8.0),
    "gpt-4.1-mini": Price(0.4, 1.6),
    "gpt-4.1-nano": Price(0.1, 0.4),
    "gpt-3.5-turbo": Price(0.5, 1.5),
}


def parse_price(text: str) -> tuple[str, Price]:
    """``"gpt-4o=2.5/10"`` -> ``("gpt-4o", Price(2.5, 10.0))``; anything else is an
    ``OptionValueError`` naming the value (a usage error, exit 2).

    >>> parse_price("my-model = 0.2/.6")
    ('my-model', Price(input=0.2, output=0.6))
    """
    match = _PRICE.match(text) if isinstance(text, str) else None
    if match is None:
        raise OptionValueError("prices", PRICE_FORMAT, text)
    return match["model"], Price(float(match["input"]), float(match["output"]))


class PriceTable:
    """The built-in prices with ``given`` ones (``--price``, parsed by :func:`parse_price`) in
    their place."""

    def __init__(self, given: dict[str, Price] | None = None) -> None:
        self.given = dict(given or {})

    @classmethod
    def parse(cls, texts) -> PriceTable:
        return cls(dict(parse_price(text) for text in texts))

    def price(self, model: str) -> Price | None:
        return self.given.get(model) or BUILT_IN_PRICES.get(model)

    def describe(self) -> dict:
        """Where prices come from, for result records."""
        return {"unit": "USD per million tokens (input/output)", "built_in_as_of": PRICES_AS_OF,
                "given": {model: [p.input, p.output] for model, p in sorted(self.given.items())}}
