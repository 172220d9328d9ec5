"""The offline provider: deterministic replies, clearly labelled, no network and no key."""

from __future__ import annotations

import json
from typing import Any

from activities.providers import Completion, OnText, conversation
from workflows.contracts import LlmCallInput, ToolCall, Usage


class MockProvider:
    """Answers every prompt with a labelled echo (or, for structured outputs, the simplest
    JSON that fits the schema), so a workflow can be tried without a key. Offered tools, it
    calls each once (arguments from the schema's examples, defaults, else the simplest
    values), then answers with what they returned: a tool loop runs offline, end to end."""

    async def complete(self, call: LlmCallInput, on_text: OnText | None = None) -> Completion:
        if call.tools and not call.turns:
            calls = [
                ToolCall(id=f"mock-{n}", name=tool.name, arguments=sample(tool.parameters, "arg"))
                for n, tool in enumerate(call.tools, 1)
            ]
            return Completion(
                text="",
                usage=Usage(input_tokens=_words(call), output_tokens=len(calls)),
                finish_reason="tool_calls",
                tool_calls=calls,
            )
        if call.response_schema is not None:
            text = json.dumps(sample(call.response_schema, "mock"))
        elif call.turns:
            results = [result for turn in call.turns for result in turn.results]
            heard = "; ".join(f"{r.name}: {' '.join(r.content.split())[:100]}" for r in results)
            text = (
                f"[offline mock reply, model {call.model}] "
                f"From {len(results)} tool call(s): {heard}"
            )
        else:
            prompt = " ".join(conversation(call)[-1]["content"].split())
            text = f"[offline mock reply, model {call.model}] You asked: {prompt[:200]}"
        return Completion(
            text=text,
            usage=Usage(
                input_tokens=_words(call),
                output_tokens=len(text.split()),
            ),
            finish_reason="stop",
        )


def _words(call: LlmCallInput) -> int:
    texts = [m["content"] for m in conversation(call)] + [call.system or ""]
    return sum(len(text.split()) for text in texts)


def sample(schema: dict[str, Any], name: str) -> Any:
    """A deterministic value that matches simple schemas: enums, objects, arrays, scalars."""
    if "const" in schema:
        return schema["const"]
    if schema.get("examples"):
        return schema["examples"][0]
    if "default" in schema:
        return schema["default"]
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
