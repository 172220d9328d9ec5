"""Temporal's exceptions become ours in one place (engine/temporal_errors.py), and each of
ours has one HTTP answer (engine/rest_errors.py): a user reads the same words from the CLI,
REST and the Python API, and never a Temporal class name. No server needed."""

from __future__ import annotations

import pytest
from temporalio.client import (
    WorkflowFailureError,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.exceptions import (
    ApplicationError,
    CancelledError,
    TerminatedError,
    TimeoutError,
    TimeoutType,
    WorkflowAlreadyStartedError,
)
from temporalio.service import RPCError, RPCStatusCode

from engine.rest_errors import classify
from engine.temporal_errors import Where, temporal_errors, translate
from workflows.errors import (
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

ADDRESS = "temporal.example:7233"
RUN = Where(ADDRESS, "prod", "run-1")
NO_RUN = Where(ADDRESS)


def rpc(status: RPCStatusCode, message: str) -> RPCError:
    return RPCError(message, status, b"")


def failed(cause: BaseException) -> WorkflowFailureError:
    return WorkflowFailureError(cause=cause)


CASES = [
    # (Temporal's exception, where, our type, our words, HTTP status and code)
    (rpc(RPCStatusCode.UNAVAILABLE, "tcp connect error"), NO_RUN, TemporalUnavailable,
     f"cannot reach Temporal at {ADDRESS}: tcp connect error", 503, "temporal_unavailable"),
    (rpc(RPCStatusCode.DEADLINE_EXCEEDED, "deadline"), NO_RUN, TemporalUnavailable,
     f"cannot reach Temporal at {ADDRESS}: deadline", 503, "temporal_unavailable"),
    (rpc(RPCStatusCode.NOT_FOUND, "workflow execution already completed"), RUN, RunEnded,
     "run run-1 has ended", 409, "conflict"),
    (rpc(RPCStatusCode.NOT_FOUND, "workflow execution already completed"), NO_RUN, RunEnded,
     "the run has ended", 409, "conflict"),
    (rpc(RPCStatusCode.NOT_FOUND, "workflow not found"), RUN, RunNotFound,
     "no run 'run-1' in namespace prod", 404, "not_found"),
    (rpc(RPCStatusCode.NOT_FOUND, "workflow not found"), NO_RUN, RunNotFound,
     f"Temporal at {ADDRESS} answered: workflow not found", 404, "not_found"),
    (rpc(RPCStatusCode.INVALID_ARGUMENT, "bad query"), NO_RUN, UsageError,
     f"Temporal at {ADDRESS} answered: bad query", 400, "bad_request"),
    (rpc(RPCStatusCode.ALREADY_EXISTS, "taken"), RUN, RunExists,
     f"Temporal at {ADDRESS} answered: taken", 409, "conflict"),
    (rpc(RPCStatusCode.RESOURCE_EXHAUSTED, "namespace rate limit"), NO_RUN, TemporalBusy,
     f"Temporal at {ADDRESS} answered: namespace rate limit", 503, "temporal_busy"),
    (rpc(RPCStatusCode.PERMISSION_DENIED, "no access"), NO_RUN, TemporalError,
     f"Temporal at {ADDRESS} answered: no access", 502, "temporal_error"),
    (WorkflowAlreadyStartedError("run-1", "YamlWorkflow"), RUN, RunExists,
     "a run with id 'run-1' exists already", 409, "conflict"),
    (failed(CancelledError()), RUN, RunFailed, "run run-1 was cancelled", 409, "run_failed"),
    (failed(TerminatedError("by hand")), RUN, RunFailed, "run run-1 was terminated: by hand",
     409, "run_failed"),
    (failed(TimeoutError("t", type=TimeoutType.START_TO_CLOSE, last_heartbeat_details=[])), RUN,
     RunFailed, "run run-1 timed out", 409, "run_failed"),
    (failed(ApplicationError("step 'x' broke")), RUN, RunFailed, "run run-1 failed: step 'x' broke",
     409, "run_failed"),
    (WorkflowQueryFailedError("no handler"), RUN, StatusUnavailable,
     "run run-1 did not answer the status query: no handler", 503, "no_worker"),
    (WorkflowUpdateFailedError(ApplicationError("'ok' must be a boolean")), RUN, SignalRefused,
     "'ok' must be a boolean", 400, "bad_request"),
    (WorkflowUpdateRPCTimeoutOrCancelledError(), RUN, TemporalUnavailable,
     f"cannot reach Temporal at {ADDRESS}: no answer in time", 503, "temporal_unavailable"),
    (RuntimeError("Failed client connect: refused\nmore"), NO_RUN, TemporalUnavailable,
     f"cannot reach Temporal at {ADDRESS}: Failed client connect: refused", 503,
     "temporal_unavailable"),
]  # fmt: skip


@pytest.mark.parametrize(("exc", "where", "kind", "words", "http", "code"), CASES)
def test_temporal_errors_become_ours(
    exc: Exception, where: Where, kind: type, words: str, http: int, code: str
):
    ours = translate(exc, where)
    assert type(ours) is kind
    assert str(ours) == words
    status, answered_code, message = classify(exc, ADDRESS)
    assert (status, answered_code) == (http, code)
    assert message.startswith(str(translate(exc, Where(ADDRESS))))


def test_a_run_that_did_not_complete_says_how_it_ended():
    states = [
        translate(failed(cause), RUN)
        for cause in (CancelledError(), TerminatedError("x"), ApplicationError("boom"))
    ]
    assert [getattr(state, "state", None) for state in states] == [
        "cancelled",
        "terminated",
        "failed",
    ]


def test_our_errors_pass_and_other_errors_are_not_ours():
    mine = UsageError("write --var name=value")
    assert translate(mine, NO_RUN) is mine
    assert translate(KeyError("x"), NO_RUN) is None
    assert translate(RuntimeError("a bug of ours"), NO_RUN) is None
    assert classify(KeyError("x"), ADDRESS)[:2] == (500, "internal")


def test_the_boundary_raises_ours_and_lets_bugs_through():
    found = pytest.raises(RunNotFound, match="no run 'run-1' in namespace prod")
    with found, temporal_errors(RUN):
        raise rpc(RPCStatusCode.NOT_FOUND, "workflow not found")
    with pytest.raises(ZeroDivisionError), temporal_errors(RUN):
        raise ZeroDivisionError
    with pytest.raises(WorkflowError) as caught, temporal_errors(RUN):
        raise RunEnded("already")
    assert str(caught.value) == "already"


def test_a_run_that_no_worker_answers_gets_the_hint_over_rest():
    status, code, message = classify(StatusUnavailable("run x did not answer"), ADDRESS)
    assert (status, code) == (503, "no_worker")
    assert message == "run x did not answer (is a worker polling the task queue?)"


TEMPORAL_NAMES = (
    "RPCError",
    "RPCStatusCode",
    "WorkflowAlreadyStartedError",
    "WorkflowFailureError",
    "WorkflowQueryFailedError",
    "WorkflowUpdateFailedError",
)


def test_only_the_boundary_reads_temporal_exceptions():
    from tests.conftest import ROOT

    fronts = [*sorted((ROOT / "engine").glob("*.py")), ROOT / "starter.py"]
    fronts += [ROOT / "workflow_engine.py"]
    readers = {
        path.name for path in fronts if any(name in path.read_text() for name in TEMPORAL_NAMES)
    }
    assert readers == {"temporal_errors.py"}
