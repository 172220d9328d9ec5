"""The offline provider: deterministic replies, clearly labelled, no network and no key."""

from __future__ import annotations

import json
from typing import Any

from activities.providers import Completion
from workflows.contracts import LlmCallInput, Usage


class MockProvider:
    """Answers every prompt with a labelled echo (or, for structured outputs, the simplest
    JSON that fits the schema), so a workflow can be tried without a key."""

    async def complete(self, call: LlmCallInput) -> Completion:
        if call.response_schema is not None:
            text = json.dumps(sample(call.response_schema, "mock"))
        else:
            prompt = " ".join(call.prompt.split())
            text = f"[offline mock reply, model {call.model}] You asked: {prompt[:200]}"
        return Completion(
            text=text,
            usage=Usage(
                input_tokens=len(call.prompt.split()) + len((call.system or "").split()),
                output_tokens=len(text.split()),
            ),
            finish_reason="stop",
        )


def sample(schema: dict[str, Any], name: str) -> Any:
    """A deterministic value that matches simple schemas: enums, objects, arrays, scalars."""
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        properties = schema.get("properties", {})
        return {key: sample(sub, key) for key, sub in properties.items()}
    if kind == "array":
        items = schema.get("items", {"type": "string"})
        return [sample(items, name) for _ in range(max(schema.get("minItems", 1), 1))]
    if kind == "integer":
        return max(schema.get("minimum", 1), 1) if "maximum" not in schema else schema["maximum"]
    if kind == "number":
        return float(schema.get("minimum", 1.0))
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return f"[mock {name}]"
