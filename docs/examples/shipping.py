"""A custom action and a validator of one's own (docs/extending.md). Name this module in
ACTION_MODULES (`ACTION_MODULES=docs.examples.shipping`) for the worker and the starter."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from activities.registry import action, validator
from workflows.contracts import ActionInput

RATES = {"DE": 4.9, "FR": 6.5, "US": 14.0}
"""Euros per started kilogram: a stand-in for your carrier's API."""


class QuoteParams(BaseModel):
    country: str = Field(description="Two-letter country code, e.g. DE")
    weight_kg: float = Field(gt=0, description="The parcel's weight")


@action("shipping_quote", QuoteParams)
async def shipping_quote(params: QuoteParams, request: ActionInput) -> dict[str, Any]:
    """The step's outputs are this dict's keys. Raising fails the attempt; Temporal retries
    it by the step's `retry`. `request.idempotency_key` stays the same across retries."""
    rate = RATES.get(params.country.upper())
    if rate is None:
        raise ValueError(f"no carrier ships to {params.country!r}")
    kilograms = int(-(-params.weight_kg // 1))  # started kilograms
    return {"price_eur": round(rate * kilograms, 2), "carrier": "ParcelCo"}


@validator("polite")
def polite(outputs: dict[str, Any]) -> tuple[bool, list[str]]:
    """Runs on an llm_call's outputs; the errors are sent back to the model, which tries
    again (up to the step's `max_reasks`)."""
    text = str(outputs.get("reply", ""))
    if text.isupper():
        return False, ["'reply' is written in capitals; write it in sentence case"]
    return True, []
