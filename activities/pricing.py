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
    cache_read: float | None = None
    """An input token read from the prompt cache; None: as `input` (no cache discount)."""
    cache_write: float | None = None
    """An input token written to the cache; None: as `input` (OpenAI: free)."""


TIER_FACTORS: dict[str, float] = {"flex": 0.5, "batch": 0.5, "priority": 1.7}
"""What a service tier costs against the standard one, as OpenAI lists them (flex and batch
half price, priority about 1.7 times: gpt-4o $4.25/$17 against $2.50/$10). A tier not named
here (default, auto, standard) is priced as standard."""

DEFAULT_PRICES: dict[str, Price] = {
    "gpt-4o": Price(2.50, 10.00, cache_read=1.25),
    "gpt-4o-mini": Price(0.15, 0.60, cache_read=0.075),
    "gpt-4": Price(30.00, 60.00),
    "gpt-4.1": Price(2.00, 8.00, cache_read=0.50),
    "gpt-4.1-mini": Price(0.40, 1.60, cache_read=0.10),
    "o3-mini": Price(1.10, 4.40, cache_read=0.55),
    "claude-haiku-4-5": Price(1.00, 5.00, cache_read=0.10, cache_write=1.25),
    "claude-sonnet-4-5": Price(3.00, 15.00, cache_read=0.30, cache_write=3.75),
    "claude-opus-4-6": Price(5.00, 25.00, cache_read=0.50, cache_write=6.25),
}


def read_prices(path: Path) -> dict[str, Price]:
    """`model: {input, output, cache_read?, cache_write?}`, dollars per million tokens."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return {
        str(model): Price(
            float(p["input"]),
            float(p["output"]),
            _optional(p.get("cache_read")),
            _optional(p.get("cache_write")),
        )
        for model, p in raw.items()
    }


def _optional(value: object) -> float | None:
    return None if value is None else float(str(value))


def price_of(prices: Mapping[str, Price], provider: str, model: str) -> Price | None:
    """`provider/model` keys win over bare ones."""
    return prices.get(f"{provider}/{model}") or prices.get(model)


def priced(
    usage: Usage,
    provider: str,
    model: str,
    prices: Mapping[str, Price],
    tier: str | None = None,
) -> Usage:
    """The usage with its estimated cost filled in: cached input at the cache prices, all of
    it at the factor of the service tier the reply was served at; `saved_usd` is what that
    spared against the standard price of every token (negative while a cache is written)."""
    price = price_of(prices, provider, model)
    if price is None or provider == MOCK:
        return usage
    read, written = usage.cache_read_tokens, usage.cache_write_tokens
    plain = usage.input_tokens - read - written
    dollars = (
        plain * price.input
        + read * _or(price.cache_read, price.input)
        + written * _or(price.cache_write, price.input)
        + usage.output_tokens * price.output
    )
    cost = dollars * TIER_FACTORS.get(tier or "", 1.0) / 1_000_000
    standard = (usage.input_tokens * price.input + usage.output_tokens * price.output) / 1_000_000
    return usage.model_copy(
        update={"cost_usd": round(cost, 8), "saved_usd": round(standard - cost, 8)}
    )


def _or(value: float | None, default: float) -> float:
    return default if value is None else value
