"""A flow's inputs as our variables and its outputs as our workflow outputs."""

from __future__ import annotations

from typing import Any

from engine.promptflow.dag import Flow
from engine.promptflow.graph import checked_reference
from engine.promptflow.names import Names
from workflows.errors import DefinitionError

TYPES = {
    "string": "string",
    "int": "integer",
    "double": "number",
    "bool": "boolean",
    "list": "array",
    "object": "object",
}
"""Prompt flow's input types and ours."""
EXAMPLES = {"string": "TEXT", "integer": "1", "number": "1.0", "boolean": "true"}
EXAMPLES |= {"array": "[]", "object": "{}"}


def variables(flow: Flow, names: Names) -> dict[str, Any]:
    """Each input in the long form: type, default, description; no default: required. A chat
    history (`is_chat_history`) is a list, empty by default."""
    found: dict[str, Any] = {}
    problems = []
    for name, settings in flow.inputs.items():
        declared = str(settings.get("type", "string"))
        if declared not in TYPES:
            where = ("inputs", name, "type")
            known = ", ".join(TYPES)
            problems.append(flow.problem(where, f"input type {declared!r} is not one of {known}"))
            continue
        spec: dict[str, Any] = {"type": TYPES[declared]}
        if settings.get("is_chat_history"):
            spec = {"type": "array", "default": settings.get("default") or []}
        elif "default" in settings:
            spec["default"] = settings["default"]
        else:
            spec["required"] = True
        description = settings.get("description")
        if settings.get("is_chat_input"):
            description = f"{description} (the chat input)" if description else "the chat input"
        if description:
            spec["description"] = str(description)
        found[names.variables[name]] = spec
    if problems:
        raise DefinitionError(problems)
    return found


def needed(spec: dict[str, Any]) -> bool:
    return bool(spec.get("required"))


def example(spec: dict[str, Any]) -> str:
    return EXAMPLES.get(str(spec.get("type")), "VALUE")


def outputs(flow: Flow, names: Names) -> dict[str, str]:
    """Each `reference: ${...}` output as a template."""
    found: dict[str, str] = {}
    for name, settings in flow.outputs.items():
        where = ("outputs", name, "reference")
        reference = checked_reference(flow, where, settings.get("reference"))
        if reference is None:
            raise DefinitionError([flow.problem(where, "an output's reference is a ${...}")])
        found[name] = "{{ " + names.expression(reference) + " }}"
    return found
