"""Parse a model's JSON reply and check it against the step's output schema."""

from __future__ import annotations

import json
import re
from typing import Any

from jsonschema import Draft202012Validator

from workflows.payloads import MAX_DEPTH, json_depth

MAX_REPLY_DEPTH = MAX_DEPTH - 1
"""A parsed reply sits one level into the call's result (LlmCallResult.parsed)."""

_FENCE = re.compile(r"^\s*```(?:json)?\s*(?P<body>.*?)\s*```\s*$", re.DOTALL)


def parse_reply(text: str, schema: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    """(outputs, None) when the reply matches; (None, what is wrong) when it does not."""
    fenced = _FENCE.match(text)
    body = fenced.group("body") if fenced else text
    depth = json_depth(body.encode())
    if depth > MAX_REPLY_DEPTH:  # it could not cross Temporal's wire (workflows/payloads.py)
        return None, f"the reply nests {depth} levels of JSON, over the limit of {MAX_REPLY_DEPTH}"
    try:
        value = json.loads(body)
    except json.JSONDecodeError as exc:
        return None, f"the reply is not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
    errors = sorted(Draft202012Validator(schema).iter_errors(value), key=lambda e: list(e.path))
    if errors:
        first = errors[0]
        where = "/".join(str(part) for part in first.path) or "the reply"
        return None, f"{where}: {first.message}"
    return value, None
