"""How the workflow calls activities: time limits, retry policies, and what it reads back
from a failure (the attempts made, the activity's own words)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, ChildWorkflowError

from workflows.definition import RetrySpec
from workflows.durations import parse_duration

DEFAULT_TIMEOUT = timedelta(seconds=60)
HEARTBEAT_TIMEOUT = timedelta(seconds=30)
"""Activities heartbeat every few seconds: a lost worker is noticed, a cancel reaches them."""
DEFAULT_RETRY = RetrySpec(max_attempts=5, initial_interval="1s", backoff=2.0, max_interval="1m")


def timeout_of(value: Any) -> timedelta:
    return parse_duration(value) if value is not None else DEFAULT_TIMEOUT


def retry_policy(spec: RetrySpec | None) -> RetryPolicy:
    merged = DEFAULT_RETRY.model_copy(update=(spec.model_dump(exclude_none=True) if spec else {}))
    return RetryPolicy(
        initial_interval=parse_duration(merged.initial_interval or 1),
        backoff_coefficient=merged.backoff or 2.0,
        maximum_interval=parse_duration(merged.max_interval or 60),
        maximum_attempts=merged.max_attempts or 5,
    )


def attempts_of(exc: ActivityError, policy: RetryPolicy) -> int:
    """How many attempts the activity made: the activity reports it; a timeout does not."""
    cause = exc.cause
    if isinstance(cause, ApplicationError) and cause.details:
        detail = cause.details[0]
        attempt = detail.get("attempt") if isinstance(detail, dict) else None
        if isinstance(attempt, int):
            return attempt
    return policy.maximum_attempts


def failure_reason(exc: BaseException) -> str:
    """The activity's or child run's own message, not Temporal's wrapper around it."""
    cause = exc
    while isinstance(cause, ActivityError | ChildWorkflowError) and cause.cause is not None:
        cause = cause.cause
    return getattr(cause, "message", None) or str(cause)


def effect_key(key: str) -> tuple[str, str]:
    """An effect's idempotency key and the run chain it belongs to. The chain's first run id
    (Temporal's `first_execution_run_id`) is in the key, so two runs under one reused
    workflow id never share keys, e-mail Message-IDs or Idempotency-Key headers; continue-as-
    new keeps it, as a continued run is the same run and must not redo its effects."""
    info = workflow.info()
    chain = info.first_execution_run_id or info.run_id
    return f"{info.workflow_id}@{chain}/{key}", chain
