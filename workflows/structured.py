"""Structured outputs: the JSON Schema a step's declared outputs ask the model for."""

from __future__ import annotations

from typing import Any

from workflows.definition import LlmCallStep, OutputSpec


def is_structured(step: LlmCallStep) -> bool:
    """One plain string output (or none) takes the reply text; anything else asks for JSON."""
    if len(step.outputs) > 1:
        return True
    return any(
        o.type != "string" or o.enum is not None or o.json_schema is not None for o in step.outputs
    )


def output_schema(output: OutputSpec) -> dict[str, Any]:
    if output.json_schema is not None:
        return output.json_schema
    schema: dict[str, Any] = {"type": output.type}
    if output.enum is not None:
        schema["enum"] = output.enum
    if output.description:
        schema["description"] = output.description
    return schema


def outputs_schema(step: LlmCallStep) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {output.name: output_schema(output) for output in step.outputs},
        "required": [output.name for output in step.outputs],
        "additionalProperties": False,
    }
