"""What crosses Temporal's wire for a batched `for_each`: the three activities that submit
the items' calls as one provider batch, poll it and read its results (activities/batches.py),
and their inputs and results. The run waits between polls on its own timers
(workflows/batch_run.py), so no activity is held open for the hours a batch may take."""

from __future__ import annotations

from pydantic import BaseModel, Field

from workflows.contracts import LlmCallInput, LlmCallResult

LLM_BATCH_SUBMIT = "llm_batch_submit"
LLM_BATCH_POLL = "llm_batch_poll"
LLM_BATCH_RESULTS = "llm_batch_results"
LLM_BATCH_CANCEL = "llm_batch_cancel"


class BatchSubmit(BaseModel):
    step_id: str
    provider: str
    model: str
    calls: dict[int, LlmCallInput]
    """By item index (the request's custom id)."""
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
    calls: dict[int, LlmCallInput]
    """The calls again: how each reply is read (its schema) and priced (its model)."""


class BatchItem(BaseModel):
    result: LlmCallResult | None = None
    error: str | None = Field(default=None, exclude_if=lambda value: value is None)
    """Why the provider did not answer this item: it goes through the normal path."""


class BatchResults(BaseModel):
    items: dict[int, BatchItem]
    """By item index; an item the provider never mentions is missing."""
