"""What the REST API takes and answers (engine/rest.py), beside the client API's own models
(engine/client.py), which it answers with as they are where they fit."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from activities.definitions import MAX_DEFINITION_BYTES, MAX_PATH_BYTES
from engine.client_models import Execution, ExecutionStatus
from engine.run_states import RunState
from workflows.contracts import RunResult, StepStatus, Usage
from workflows.errors import Problem

NEW_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,199}$"
MAX_ID_LENGTH = 1000
"""Temporal's default limit on a workflow id."""
SIGNAL_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.-]{0,99}$"


class Strict(BaseModel):
    """A request body: a misspelt field is refused, not ignored, and JSON types are not
    converted (`"offline": 0` is not false)."""

    model_config = ConfigDict(extra="forbid", strict=True)


class RunOptions(Strict):
    variables: dict[str, Any] = Field(
        default={}, description="The run's variables; the definition's declared types apply."
    )
    execution_id: str | None = Field(
        default=None,
        pattern=NEW_ID_PATTERN,
        description="The run's id (default: the workflow's name and a random suffix). An id "
        "a run has (running, or ended and kept) is refused (409) unless `reuse_id`.",
    )
    reuse_id: bool = Field(
        default=False,
        description="Start even if an ended run has this `execution_id`. The runs still "
        "never share idempotency keys, e-mail Message-IDs or run folders.",
    )
    offline: bool = Field(
        default=False, description="Send every model call to the offline mock provider."
    )


class ExecuteRequest(RunOptions):
    """The seed's request: a definition file under the server's DEFINITIONS_DIR."""

    workflow_file: str = Field(
        min_length=1,
        max_length=MAX_PATH_BYTES,
        description="A path relative to the server's DEFINITIONS_DIR.",
        examples=["definitions/hello_world.yaml"],
    )


class ExecuteYamlRequest(RunOptions):
    yaml: str = Field(
        min_length=1,
        max_length=MAX_DEFINITION_BYTES,
        description="The definition's text; `workflow` steps name files under DEFINITIONS_DIR.",
    )


class ValidateRequest(Strict):
    """Exactly one of `yaml` and `workflow_file`."""

    yaml: str | None = Field(default=None, min_length=1, max_length=MAX_DEFINITION_BYTES)
    workflow_file: str | None = Field(default=None, min_length=1, max_length=MAX_PATH_BYTES)

    @model_validator(mode="after")
    def _one_source(self) -> ValidateRequest:
        if (self.yaml is None) == (self.workflow_file is None):
            raise ValueError("give exactly one of 'yaml' and 'workflow_file'")
        return self


class RerunRequest(Strict):
    from_step: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="Run this step again, and every step that waits for it.",
    )
    variables: dict[str, Any] = Field(
        default={}, description="Variables changed for what runs again."
    )


class Started(BaseModel):
    """The seed's answer (`execution_id`, `status`, `message`), with the run's name and link."""

    execution_id: str
    status: Literal["started"] = "started"
    message: str
    workflow_name: str
    mocked_providers: list[str] = []
    ui_url: str


class SeedStatus(BaseModel):
    """The seed's status shape, as `WorkflowEngine.get_execution_status` answers it."""

    execution_id: str
    workflow_name: str
    status: RunState
    current_step: str | None
    running_steps: list[str]
    completed_steps: int
    started_at: datetime | None
    updated_at: datetime | None
    variables: dict[str, Any]
    outputs: dict[str, dict[str, Any] | None] = Field(description="Each step's outputs by id.")
    usage: Usage

    @classmethod
    def of(cls, status: ExecutionStatus) -> SeedStatus:
        return cls(
            execution_id=status.execution_id,
            workflow_name=status.workflow_name,
            status=status.execution_status,
            current_step=status.running[0] if status.running else None,
            running_steps=status.running,
            completed_steps=len(status.finished_steps),
            started_at=status.started_at,
            updated_at=status.closed_at or status.started_at,
            variables=status.variables,
            outputs={step_id: step.outputs for step_id, step in status.steps.items()},
            usage=status.usage,
        )


class Cancelled(BaseModel):
    """The seed's `{"status": "cancelled"}`; `cancelling` when the run has not ended within
    the wait (its running activities learn of it at their next heartbeat)."""

    execution_id: str
    status: Literal["cancelled", "cancelling"]
    finished_steps: list[str]


class Outcome(BaseModel):
    """A run's result, or why there is none: `running` when the wait ran out."""

    execution_id: str
    status: RunState
    result: RunResult | None = None
    error: str | None = None


class Page(BaseModel):
    executions: list[Execution]
    next_page: str | None = Field(
        description="Give as `page` for the next (older) runs; null on the last page."
    )


class Signalled(BaseModel):
    execution_id: str
    signal: str
    answer: str = Field(description="The run's answer, e.g. which step accepted the payload")


class ProblemOut(BaseModel):
    file: str
    line: int
    column: int
    message: str

    @classmethod
    def of(cls, problem: Problem) -> ProblemOut:
        return cls(
            file=problem.file, line=problem.line, column=problem.col, message=problem.message
        )


class Validated(BaseModel):
    valid: bool
    workflow_name: str | None = None
    problems: list[ProblemOut] = []
    warnings: list[ProblemOut] = Field(default=[], exclude_if=lambda value: not value)
    """Settings a valid definition's model calls will not send (e.g. a temperature)."""


class ErrorBody(BaseModel):
    """Every error answer: a stable code, one line to show, and for an invalid definition
    every problem, located."""

    error: str
    message: str
    problems: list[ProblemOut] = []


class TextEvent(BaseModel):
    """The data of `text` events: the next piece of a reply arriving now."""

    step: str
    text: str


class StepEvent(BaseModel):
    """The data of `step_started`, `step_finished` and `step_failed` events."""

    step: str
    status: StepStatus | None = Field(default=None, description="Absent on step_started.")
    attempts: int | None = None
    duration_ms: int | None = None
    step_usage: Usage | None = None
    error: str | None = Field(default=None, description="Why the step failed.")
    steps_done: int
    total_steps: int
    usage: Usage = Field(description="The run's tokens and cost so far.")


class EndEvent(BaseModel):
    """The data of the last event, `end`."""

    execution_id: str
    status: RunState
    outputs: dict[str, Any]
    usage: Usage
    error: str | None = None


EVENT_NAMES = ["step_started", "step_finished", "step_failed", "end"]


class Health(BaseModel):
    status: Literal["ok"] = "ok"
