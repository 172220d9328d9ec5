"""An example custom action and validator. Load them with
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

from pydantic import BaseModel

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
