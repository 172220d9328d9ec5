"""What the client API answers with: a started run, a run in a list, a run's status (its own
account and Temporal's), a signal's answer, a rerun."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from temporalio.client import WorkflowExecutionStatus

from engine.run_states import ExecutionState, RunState
from workflows.contracts import RunStatus, Usage

STATES: dict[WorkflowExecutionStatus, ExecutionState] = {
    WorkflowExecutionStatus.RUNNING: "running",
    WorkflowExecutionStatus.COMPLETED: "completed",
    WorkflowExecutionStatus.FAILED: "failed",
    WorkflowExecutionStatus.CANCELED: "cancelled",
    WorkflowExecutionStatus.TERMINATED: "terminated",
    WorkflowExecutionStatus.TIMED_OUT: "timed_out",
    WorkflowExecutionStatus.CONTINUED_AS_NEW: "continued_as_new",
}


def state_of(status: WorkflowExecutionStatus | None) -> RunState:
    """Temporal's state of a run (a description's, a listed run's) in our words."""
    return STATES.get(status, "unknown") if status else "unknown"


class Started(BaseModel):
    execution_id: str
    workflow_name: str
    mocked_providers: list[str] = []
    """Providers whose calls go to the offline mock in this run."""


class Execution(BaseModel):
    """One run as `list` shows it."""

    execution_id: str
    workflow_name: str | None
    status: RunState
    steps_done: int | None
    started_at: datetime
    closed_at: datetime | None = None


class ExecutionStatus(RunStatus):
    """The run's own account (its `status` query) and Temporal's state of it."""

    execution_id: str
    execution_status: RunState
    started_at: datetime | None = None
    closed_at: datetime | None = None
    waiting_for: list[str] = []
    """What running calls wait for, from their heartbeats: 'waiting for openai/gpt-4o-mini
    capacity' while a worker paces calls at the provider's rate limit."""
    streaming: list[StreamedText] = []
    """Replies arriving now, from the calls' heartbeats (never stored in history)."""


class StreamedText(BaseModel):
    """A reply so far: `text` is its tail, starting `offset` characters into it."""

    activity_id: str
    step: str
    offset: int
    text: str


class Signalled(BaseModel):
    execution_id: str
    signal: str
    answer: str
    """The run's answer: which step accepted the payload."""


class Rerun(BaseModel):
    execution_id: str
    rerun_of: str
    reused_steps: list[str]
    reused_items: int
    saved: Usage
