"""The approval form of a `wait_for_signal` step, built from its declared outputs (each
field named as its output: text, number, boolean as a choice, enum as a select), and the
form's answer read back into the payload the CLI would send. Pure; the run itself checks
the payload (the same Update validator as `starter.py signal`), so a value the form did not
offer reaches the validator as given and is refused there."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel

from workflows.definition_parts import OutputSpec

Widget = Literal["text", "number", "select", "json"]


class FormField(BaseModel):
    name: str
    label: str
    widget: Widget
    choices: list[tuple[str, str]] = []
    """(value sent, text shown) for a select."""
    step: str | None = None
    """`any` for a number, `1` for an integer."""
    help: str | None = None
    value: str = ""
    error: str | None = None


def form_fields(outputs: list[OutputSpec]) -> list[FormField]:
    return [_field(output) for output in outputs]


def _field(output: OutputSpec) -> FormField:
    field = FormField(name=output.name, label=output.name, widget="text", help=output.description)
    if output.json_schema is not None or output.type in ("object", "array"):
        field.widget = "json"
    elif output.enum is not None:
        field.widget = "select"
        field.choices = [(json.dumps(choice), _shown(choice)) for choice in output.enum]
    elif output.type == "boolean":
        field.widget = "select"
        field.choices = [("true", "yes"), ("false", "no")]
    elif output.type in ("number", "integer"):
        field.widget = "number"
        field.step = "1" if output.type == "integer" else "any"
    return field


def _shown(choice: Any) -> str:
    return choice if isinstance(choice, str) else json.dumps(choice)


def payload_of(outputs: list[OutputSpec], form: dict[str, str]) -> dict[str, Any]:
    """The signal's payload from the form's text: each value read as its output's type where
    it reads as one, else sent as the text it is (for the run to refuse). An empty field is
    left out, as the CLI would leave it out."""
    payload: dict[str, Any] = {}
    for output in outputs:
        text = form.get(output.name, "")
        if text == "":
            continue
        payload[output.name] = read_value(output, text)
    return payload


def read_value(output: OutputSpec, text: str) -> Any:
    if output.type == "string" and output.enum is None and output.json_schema is None:
        return text
    try:
        value = json.loads(text)
    except ValueError:
        return text
    if output.type == "number" and isinstance(value, bool):
        return text
    return value


def field_errors(fields: list[FormField], problems: str) -> str | None:
    """Put each of the run's refusals ("'approved' must be a boolean, not 'maybe'") beside its
    field; what names no field is the form's own message."""
    rest = []
    for line in problems.split("; "):
        for field in fields:
            if f"'{field.name}'" in line:
                field.error = line if field.error is None else f"{field.error}; {line}"
                break
        else:
            rest.append(line)
    return "; ".join(rest) or None
