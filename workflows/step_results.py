"""What running a step gives back to the scheduler: its outputs once, or why it stopped."""

from __future__ import annotations

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
    try:
        return render(template, context)
    except WorkflowError as exc:
        raise ApplicationError(
            f"{where}: {exc}", type=FailureType.TEMPLATE, non_retryable=True
        ) from None
