"""What crosses Temporal's wire: the run's input and result, and each activity's input and result.

These live beside the workflow (not in ``activities/``) so workflow code can import them
without importing provider SDKs.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from workflows.definition import Definition

StepStatus = Literal["completed", "skipped", "failed"]


class Usage(BaseModel):
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    """Estimated from the worker's price table (0 for unknown models and the mock)."""

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cost_usd=round(self.cost_usd + other.cost_usd, 8),
        )


class StepResult(BaseModel):
    status: StepStatus
    outputs: dict[str, Any] | None
    attempts: int
    duration_ms: int
    usage: Usage
    error: str | None = Field(default=None, exclude_if=lambda value: value is None)
    """Why a step failed; present only for failed steps."""


class ItemResult(BaseModel):
    """One finished for_each item of a step that has not finished: carried into the next
    run when a run continues as new, and reused by `resume` when the item is the same."""

    item: Any = None
    outputs: dict[str, Any]
    attempts: int
    usage: Usage


class RunInput(BaseModel):
    """Start a run from a parsed definition, or from a file the worker loads once."""

    definition: Definition | None = None
    definition_file: str | None = None
    children: dict[str, Definition] = {}
    """Definitions that `workflow` steps run, by the file name they are written as."""
    variables: dict[str, Any] = {}
    mock_providers: list[str] = []
    """Providers whose calls go to the offline ``mock`` provider for this run."""
    llm_task_queue: str | None = None
    """Task queue for LLM calls (default: the run's), so one provider's rate can be limited
    across all workers with Temporal's task-queue rate limit."""
    action_task_queue: str | None = None
    """Task queue for actions (default: the run's)."""
    reuse: dict[str, StepResult] = {}
    """Results of steps an earlier run finished, taken as they are instead of run again."""
    reuse_items: dict[str, dict[int, ItemResult]] = {}
    """for_each items the previous run of this execution finished (continue-as-new)."""
    signals: dict[str, list[Any]] = {}
    """Signals received and not consumed yet, carried across continue-as-new."""
    paused: bool = False
    started_at: str | None = None
    """When the execution's first run started: `run.started_at` across continue-as-new."""

    @model_validator(mode="after")
    def _one_source(self) -> RunInput:
        if (self.definition is None) == (self.definition_file is None):
            raise ValueError("give exactly one of 'definition' and 'definition_file'")
        return self


class RunStatus(BaseModel):
    """What the `status` query answers, while a run goes on and after it ended."""

    workflow_name: str = ""
    paused: bool = False
    total_steps: int = 0
    running: list[str] = []
    steps: dict[str, StepResult] = {}
    outputs: dict[str, Any] = {}
    usage: Usage = Usage()
    items: dict[str, dict[int, ItemResult]] = {}
    """Finished items of for_each steps that have not finished (running, failed or cut
    short), by step id and index."""
    variables: dict[str, Any] = {}
    """The run's variables, defaults filled in."""
    awaited_signals: list[str] = []
    """Signal names the definition's steps wait for (others are dropped)."""
    dropped_signals: int = 0
    """Signals refused: no step waits for them, too big, undecodable, or too many buffered."""


class RunResult(BaseModel):
    execution_id: str
    workflow_name: str
    status: Literal["completed"]
    outputs: dict[str, Any]
    steps: dict[str, StepResult]
    usage: Usage


LOAD_DEFINITION = "load_definition"
"""The activity that reads a run's definition file (activities/load_definition.py)."""


class LoadDefinitionInput(BaseModel):
    path: str


class LoadedDefinition(BaseModel):
    """A definition file and every definition its `workflow` steps run, loaded together."""

    definition: Definition
    children: dict[str, Definition] = {}


class ChatMessage(BaseModel):
    role: Literal["user", "assistant"]
    content: str


LLM_CALL = "llm_call"
"""The activity that makes one model call (activities/llm.py)."""
PACE = "pace"
"""The no-op local activity a long stretch of in-workflow work yields with."""


class LlmCallInput(BaseModel):
    step_id: str
    provider: str
    model: str
    prompt: str
    system: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    response_schema: dict[str, Any] | None = None
    """Ask for JSON matching this schema, natively where the provider can."""
    reasks: list[ChatMessage] = []
    """Earlier replies and what was wrong with them, sent after the prompt on a re-ask."""


class LlmCallResult(BaseModel):
    text: str
    provider: str
    model: str
    usage: Usage
    attempt: int
    finish_reason: str | None = None
    parsed: dict[str, Any] | None = None
    """With a response schema: the reply parsed and checked against it."""
    invalid: str | None = None
    """With a response schema: why the reply does not match it."""


class SecretSlot(BaseModel):
    """A param whose template (the definition's own text) uses `secrets.NAME`: where it is in
    the params, and its text as parts (literal text at even indexes, secret names at odd).
    Only the activity fills it in; the params themselves are never searched for secrets."""

    path: list[str | int]
    parts: list[str]


class ActionInput(BaseModel):
    step_id: str
    action: str
    params: dict[str, Any]
    idempotency_key: str
    """Stable across retries: workflow id, step id and item index."""
    secrets: list[SecretSlot] = Field(default=[], exclude_if=lambda value: not value)


class ActionResult(BaseModel):
    value: Any
    attempt: int


VALIDATOR_PREFIX = "validator."
"""A validator's activity is named this plus its name: `validator.no_pii`."""


class ValidatorInput(BaseModel):
    step_id: str
    validator: str
    outputs: dict[str, Any]
    """The llm_call's outputs as the reply gave them."""


class ValidatorResult(BaseModel):
    valid: bool
    errors: list[str] = []
    """Why the reply is not valid; the model is told them when it is asked again."""
