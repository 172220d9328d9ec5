"""Estimated cost of a call: a price table per model, in US dollars per million tokens.

The built-in table is a starting point; operators keep their own in a YAML file named by
PRICES_FILE (`model: {input: 2.5, output: 10}`; `provider/model` keys win over bare ones).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from workflows.contracts import Usage
from workflows.providers import MOCK


@dataclass(frozen=True)
class Price:
    input: float
    output: float


DEFAULT_PRICES: dict[str, Price] = {
    "gpt-4o": Price(2.50, 10.00),
    "gpt-4o-mini": Price(0.15, 0.60),
    "gpt-4": Price(30.00, 60.00),
    "gpt-4.1": Price(2.00, 8.00),
    "gpt-4.1-mini": Price(0.40, 1.60),
    "o3-mini": Price(1.10, 4.40),
    "claude-haiku-4-5": Price(1.00, 5.00),
    "claude-sonnet-4-5": Price(3.00, 15.00),
    "claude-opus-4-6": Price(5.00, 25.00),
}


def read_prices(path: Path) -> dict[str, Price]:
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return {str(model): Price(float(p["input"]), float(p["output"])) for model, p in raw.items()}


def price_of(prices: Mapping[str, Price], provider: str, model: str) -> Price | None:
    """`provider/model` keys win over bare ones."""
    return prices.get(f"{provider}/{model}") or prices.get(model)


def priced(usage: Usage, provider: str, model: str, prices: Mapping[str, Price]) -> Usage:
    """The usage with its estimated cost filled in."""
    price = price_of(prices, provider, model)
    if price is None or provider == MOCK:
        return usage
    cost = (usage.input_tokens * price.input + usage.output_tokens * price.output) / 1_000_000
    return usage.model_copy(update={"cost_usd": round(cost, 8)})
