"""What crosses Temporal's wire for a batched `for_each`: the three activities that submit
the items' calls as one provider batch, poll it and read its results (activities/batches.py),
and their inputs and results. The run waits between polls on its own timers
(workflows/batch_run.py), so no activity is held open for the hours a batch may take."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from workflows.contracts import LlmCallInput, LlmCallResult

LLM_BATCH_SUBMIT = "llm_batch_submit"
LLM_BATCH_POLL = "llm_batch_poll"
LLM_BATCH_RESULTS = "llm_batch_results"
LLM_BATCH_CANCEL = "llm_batch_cancel"


class BatchSubmit(BaseModel):
    """Every item's call, to submit as one batch."""

    step_id: str
    provider: str
    model: str
    calls: dict[int, LlmCallInput]
    """By item index (the request's custom id); without the shared system prompt."""
    system: str | None = Field(default=None, exclude_if=lambda value: value is None)
    """The system prompt every call shares (a long instruction is in history once, not
    once per item: a thousand items stay far under Temporal's payload limit)."""
    idempotency_key: str
    """Stable across retries and worker restarts (workflows/activity_options.py
    `effect_key`): a retried submission finds the batch an earlier attempt made."""


class BatchRef(BaseModel):
    """A submitted batch: what polling and reading it need."""

    step_id: str
    provider: str
    model: str
    batch_id: str


class BatchState(BaseModel):
    ended: bool
    status: str
    """The provider's word for it: in_progress, completed, ended, expired, cancelled..."""
    done: int = 0
    failed: int = 0
    total: int = 0


class BatchResultsInput(BaseModel):
    batch: BatchRef
    items: list[int]
    """The item indexes submitted."""
    response_schema: dict[str, Any] | None = None
    """The step's outputs' schema, which each reply is read against."""


class BatchItem(BaseModel):
    result: LlmCallResult | None = None
    error: str | None = Field(default=None, exclude_if=lambda value: value is None)
    """Why the provider did not answer this item: it goes through the normal path."""


class BatchResults(BaseModel):
    items: dict[int, BatchItem]
    """By item index; an item the provider never mentions is missing."""


def shared_system(calls: dict[int, LlmCallInput]) -> tuple[str | None, dict[int, LlmCallInput]]:
    """The system prompt all `calls` share, and the calls without it (unchanged if they
    differ)."""
    systems = {call.system for call in calls.values()}
    if len(systems) != 1 or None in systems:
        return None, calls
    return systems.pop(), {i: c.model_copy(update={"system": None}) for i, c in calls.items()}


def with_system(submit: BatchSubmit) -> dict[int, LlmCallInput]:
    """The calls as the step made them, shared system prompt restored."""
    if submit.system is None:
        return submit.calls
    return {i: c.model_copy(update={"system": submit.system}) for i, c in submit.calls.items()}
