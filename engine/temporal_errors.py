"""Temporal's exceptions in our words: the one place that reads an RPC status code or a
Temporal exception type. The client API raises what `translate` gives (sharpened where it
knows more, a signal's name say); the CLI and REST catch `WorkflowError` and answer by its
type, never by Temporal's.

    RPC UNAVAILABLE, DEADLINE_EXCEEDED, "connect"   TemporalUnavailable
    RPC NOT_FOUND "already completed"               RunEnded
    RPC NOT_FOUND                                   RunNotFound
    RPC INVALID_ARGUMENT                            UsageError
    RPC ALREADY_EXISTS, WorkflowAlreadyStarted      RunExists
    RPC RESOURCE_EXHAUSTED                          TemporalBusy
    any other RPC status                            TemporalError
    WorkflowFailureError                            RunFailed (cancelled, terminated, ...)
    WorkflowQueryFailedError                        StatusUnavailable
    WorkflowUpdateFailedError                       SignalRefused
    an update's or query's RPC timing out           TemporalUnavailable
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

from temporalio import exceptions as temporal
from temporalio.client import (
    RPCTimeoutOrCancelledError,
    ScheduleAlreadyRunningError,
    WorkflowFailureError,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
)
from temporalio.service import RPCError, RPCStatusCode

from workflows.errors import (
    EndedState,
    RunEnded,
    RunExists,
    RunFailed,
    RunNotFound,
    SignalRefused,
    StatusUnavailable,
    TemporalBusy,
    TemporalError,
    TemporalUnavailable,
    UsageError,
    WorkflowError,
)

UNREACHABLE = {RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED}
TEMPORAL_EXCEPTIONS: tuple[type[Exception], ...] = (temporal.TemporalError, RuntimeError)
"""What `translate` may turn into ours: Temporal's own, and the SDK's failed connect (a
RuntimeError)."""


@dataclass(frozen=True)
class Where:
    """What a request went to, so an error can name it."""

    address: str
    namespace: str = "default"
    execution_id: str | None = None


def translate(exc: BaseException, where: Where) -> WorkflowError | None:
    """Our error for `exc` (ours pass as they are); None for one that is not Temporal's,
    a bug of ours that the caller lets through."""
    if isinstance(exc, WorkflowError):
        return exc
    run = where.execution_id
    if isinstance(exc, temporal.WorkflowAlreadyStartedError):
        return RunExists(f"a run with id {exc.workflow_id!r} exists already")
    if isinstance(exc, WorkflowFailureError):
        state, reason = ending(exc)
        return RunFailed(run or "(unknown)", reason, state)
    if isinstance(exc, WorkflowQueryFailedError):
        return StatusUnavailable(f"{_run(where)} did not answer the status query: {exc.message}")
    if isinstance(exc, WorkflowUpdateFailedError):
        return SignalRefused(getattr(exc.cause, "message", None) or str(exc.cause))
    if isinstance(exc, RPCTimeoutOrCancelledError):
        return TemporalUnavailable(where.address, "no answer in time")
    if isinstance(exc, RPCError):
        return _rpc_error(exc, where)
    if isinstance(exc, RuntimeError) and "connect" in str(exc).lower():
        return TemporalUnavailable(where.address, first_line(exc))
    return None


def _rpc_error(exc: RPCError, where: Where) -> WorkflowError:
    detail, status = exc.message, exc.status
    if status in UNREACHABLE or "connect" in detail.lower():
        return TemporalUnavailable(where.address, detail)
    if status == RPCStatusCode.NOT_FOUND:
        if "already completed" in detail:
            return RunEnded(f"{_run(where)} has ended")
        if where.execution_id:
            return RunNotFound(f"no run {where.execution_id!r} in namespace {where.namespace}")
        return RunNotFound(TemporalError.describe(where.address, detail))
    if status == RPCStatusCode.INVALID_ARGUMENT:
        return UsageError(TemporalError.describe(where.address, detail))
    if status == RPCStatusCode.ALREADY_EXISTS:
        return RunExists(TemporalError.describe(where.address, detail))
    if status == RPCStatusCode.RESOURCE_EXHAUSTED:
        return TemporalBusy(where.address, detail)
    return TemporalError(where.address, detail)


def ending(exc: WorkflowFailureError) -> tuple[EndedState, str]:
    """How a run that did not complete ended (a state `list` knows) and why, in words."""
    cause = exc.cause
    if isinstance(cause, temporal.CancelledError):
        return "cancelled", "was cancelled"
    if isinstance(cause, temporal.TerminatedError):
        return "terminated", f"was terminated: {cause.message}"
    if isinstance(cause, temporal.TimeoutError):
        return "timed_out", "timed out"
    return "failed", f"failed: {getattr(cause, 'message', cause) if cause else exc}"


@contextlib.contextmanager
def temporal_errors(where: Where) -> Iterator[None]:
    """Temporal's exceptions raised inside leave as ours; anything else passes untouched."""
    try:
        yield
    except TEMPORAL_EXCEPTIONS as exc:
        ours = translate(exc, where)
        if ours is None:
            raise
        raise ours from exc


def _run(where: Where) -> str:
    return f"run {where.execution_id}" if where.execution_id else "the run"


def first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:500]


@contextlib.contextmanager
def schedule_errors(where: Where, name: str | None, cron: str | None) -> Iterator[None]:
    """A schedule's errors: a name taken, a schedule missing, a cron Temporal cannot read;
    anything else as `temporal_errors` says."""
    try:
        yield
    except ScheduleAlreadyRunningError:
        raise UsageError(
            f"a schedule named {name!r} exists already: delete it first "
            f"(starter.py schedule delete {name}) or choose another name"
        ) from None
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND and name:
            raise RunNotFound(
                f"no schedule {name!r} in namespace {where.namespace} "
                "(starter.py schedule list shows them)"
            ) from None
        if exc.status == RPCStatusCode.INVALID_ARGUMENT and cron is not None:
            detail = exc.message.removeprefix("Invalid schedule spec: ")
            raise UsageError(
                f"cron {cron!r} does not parse: {detail} (five fields: minute hour "
                'day-of-month month day-of-week, e.g. "0 9 * * 1-5")'
            ) from None
        with temporal_errors(where):
            raise
