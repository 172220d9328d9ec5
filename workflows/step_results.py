"""What running a step gives back to the scheduler: its outputs once, or why it stopped."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from workflows.contracts import Usage
    from workflows.errors import FailureType, WorkflowError
    from workflows.templates import render


class StepFailed(Exception):
    """A step failed for good; `on_error` decides what happens next."""

    def __init__(self, message: str, attempts: int) -> None:
        super().__init__(message)
        self.attempts = attempts


class Drained(Exception):
    """A step stopped because the run is draining to continue as new: a for_each started
    no more items (those it finished stay in `RunStatus.items`), or a wait for a signal
    gave up its place (the next run waits again, with the buffered signals)."""


@dataclass
class Once:
    """What one execution of a step (or one for_each item) produced."""

    outputs: dict[str, Any]
    attempts: int = 0
    usage: Usage = field(default_factory=Usage)


def render_or_fail(template: Any, context: dict[str, Any], where: str) -> Any:
    """Render a step's field; a failure fails the step for good, naming step and field."""
    try:
        return render(template, context)
    except WorkflowError as exc:
        raise template_failure(where, exc) from None


_FIELD = re.compile(r"(?P<step>[A-Za-z_][A-Za-z0-9_]*)(?:/(?P<item>[0-9]+))?\.(?P<field>.+)")


def template_failure(where: str, exc: WorkflowError) -> ApplicationError:
    """A run-time template error as the user reads it: `ask.prompt` (`each/3.values.x`
    inside a for_each) becomes `step 'ask', field 'prompt'` (`step 'each' item 3, ...`);
    other places (`workflow output 'r'`) are named as given. Not retried: the same
    template fails the same way again."""
    found = _FIELD.fullmatch(where)
    if found is not None:
        item = f" item {found['item']}" if found["item"] is not None else ""
        where = f"step {found['step']!r}{item}, field {found['field']!r}"
    return ApplicationError(f"{where}: {exc}", type=FailureType.TEMPLATE, non_retryable=True)
