"""Example custom actions (word_count; lookup_order and refund_order for the support agent,
definitions/support_agent.yaml) and a validator. Load them with
ACTION_MODULES=activities.example_actions (on the worker, and for the starter so it can
validate the params and the validator's name), then write:

    - id: count
      type: action
      action: word_count
      params: {text: "{{ brief }}"}
      outputs: [words]

    - id: reply
      type: llm_call
      prompt: "Answer the customer: {{ ticket }}"
      validate: [{validator: no_pii}]
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, Field

from activities.registry import action, validator
from workflows.contracts import ActionInput

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
DIGITS = re.compile(r"\+?\(?\d[\d ().-]{6,}\d")
PHONE_DIGITS = 9
"""A run of nine or more digits, maybe grouped, looks like a phone number (a date does not):
enough for an example, not a PII scanner."""


class WordCountParams(BaseModel):
    text: str


@action("word_count", WordCountParams)
def word_count(params: WordCountParams, request: ActionInput) -> int:
    """Sync functions are fine; async ones too. The return value is the step's output."""
    return len(params.text.split())


ORDERS = {
    "A-1042": {"status": "delivered", "total": 59.90, "currency": "EUR", "item": "kettle"},
    "A-7": {"status": "shipped", "total": 12.50, "currency": "EUR", "item": "mug"},
}


class LookupOrderParams(BaseModel):
    order_id: str = Field(description="The order's id, e.g. A-1042", examples=["A-1042"])
    region: str = Field(default="eu", description="Where the order was placed")


@action("lookup_order", LookupOrderParams)
def lookup_order(params: LookupOrderParams, request: ActionInput) -> dict[str, Any]:
    """Looks up an order by its id: its status, total and item (a stand-in for your shop's
    API). An unknown id answers with an error the model can read."""
    order = ORDERS.get(params.order_id)
    if order is None:
        raise ValueError(f"no order {params.order_id!r} in region {params.region}")
    return {"order_id": params.order_id, "region": params.region, **order}


class RefundOrderParams(BaseModel):
    order_id: str
    amount: float = Field(gt=0)
    reason: str = ""


@action("refund_order", RefundOrderParams)
def refund_order(params: RefundOrderParams, request: ActionInput) -> dict[str, Any]:
    """Refunds an order (a stand-in: it answers what a payment API would). The request's
    idempotency key is what a real one would be sent, so a retry cannot refund twice."""
    return {"refunded": params.amount, "order_id": params.order_id, "key": request.idempotency_key}


@validator("no_pii")
def no_pii(outputs: dict[str, Any]) -> tuple[bool, list[str]]:
    """Refuses outputs that contain an e-mail address or a phone-like number. The errors
    are what the model is told when it is asked again."""
    errors = []
    for name, value in outputs.items():
        text = str(value)
        if EMAIL.search(text):
            errors.append(f"'{name}' contains an e-mail address; leave it out")
        if any(sum(c.isdigit() for c in run) >= PHONE_DIGITS for run in DIGITS.findall(text)):
            errors.append(f"'{name}' contains a phone number; leave it out")
    return not errors, errors
