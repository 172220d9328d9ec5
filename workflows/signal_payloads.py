"""Whether a signal's payload fits the step that waits for it: each declared output present
in the payload must have its declared type (and be one of its enum). An approval sent as
`{"approved": "false"}` to a step that declares `approved: boolean` is refused to its sender
(an update) or dropped and recorded (a signal), and the step keeps waiting."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from workflows.definition import WaitForSignalStep
from workflows.validation import has_type


def payload_problems(steps: Iterable[WaitForSignalStep], payload: Any) -> list[str]:
    """Why `payload` fits none of `steps` (the steps waiting for its signal); empty when it
    fits one of them, or when none is known yet."""
    problems: list[str] = []
    for step in steps:
        found = _problems(step, payload)
        if not found:
            return []
        problems = problems or found
    return problems


def _problems(step: WaitForSignalStep, payload: Any) -> list[str]:
    fields = payload if isinstance(payload, dict) else {"value": payload}
    problems = []
    for output in step.outputs:
        value = fields.get(output.name)
        if value is None or output.json_schema is not None:
            continue
        if not has_type(value, output.type):
            problems.append(f"'{output.name}' must be {_a(output.type)}, not {_shown(value)}")
        elif output.enum is not None and value not in output.enum:
            allowed = ", ".join(_shown(choice) for choice in output.enum)
            problems.append(f"'{output.name}' must be one of {allowed}, not {_shown(value)}")
    return problems


def _a(type_name: str) -> str:
    return f"an {type_name}" if type_name[0] in "aeiou" else f"a {type_name}"


def _shown(value: Any) -> str:
    text = repr(value) if not isinstance(value, bool) else str(value).lower()
    return text if len(text) <= 60 else text[:57] + "..."
