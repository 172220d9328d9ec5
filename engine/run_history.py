"""What a run did, read back from its Temporal history: every model call and action with
its input and outcome, the signals it received, and the child runs it started. The test
runner counts calls and prompts from it; `record` turns it into a test case."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from temporalio.api.failure.v1 import Failure
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client
from temporalio.converter import DataConverter
from temporalio.exceptions import ApplicationError, TimeoutError

from workflows.contracts import (
    DESCRIBE_TOOLS,
    LLM_CALL,
    LOAD_DEFINITION,
    MCP_CALL,
    PACE,
    VALIDATOR_PREFIX,
    ActionInput,
    ActionResult,
    LlmCallInput,
    LlmCallResult,
    RunInput,
)

NOT_CALLS = (PACE, LOAD_DEFINITION, DESCRIBE_TOOLS, MCP_CALL)
"""Activities that are neither a model call nor an action (nor scripted)."""


@dataclass
class Call:
    """One activity the run scheduled for a step: a model call, or an action (a tool's too)."""

    step_id: str
    key: str
    """`step`, or `step/ITEM` for a for_each item (tool calls: `step/turnN.M`)."""
    request: LlmCallInput | ActionInput
    result: LlmCallResult | ActionResult | None = None
    failure: BaseException | None = None
    """Why the call failed for good (its last attempt's error)."""
    attempts: int = 1
    earlier_failure: BaseException | None = None
    """The error of the attempt before the last one, when there were several."""

    @property
    def is_model_call(self) -> bool:
        return isinstance(self.request, LlmCallInput)


@dataclass
class RunHistory:
    workflow_id: str
    run_input: RunInput | None
    calls: list[Call] = field(default_factory=list)
    signals: list[tuple[str, Any]] = field(default_factory=list)
    """Signals received, in order: name and payload."""
    children: list[str] = field(default_factory=list)
    """Workflow ids of the child runs it started, in order."""


async def read_run(client: Client, workflow_id: str, run_id: str | None = None) -> RunHistory:
    """The run's history (its latest run unless `run_id`), decoded."""
    converter = client.data_converter
    handle = client.get_workflow_handle(workflow_id, run_id=run_id)
    history = await handle.fetch_history()
    run = RunHistory(workflow_id, None)
    by_event: dict[int, Call] = {}
    for event in history.events:
        if event.HasField("workflow_execution_started_event_attributes"):
            payloads = event.workflow_execution_started_event_attributes.input.payloads
            [run.run_input] = await converter.decode(payloads, [RunInput])
        elif event.HasField("activity_task_scheduled_event_attributes"):
            call = await _scheduled(converter, event)
            if call is not None:
                by_event[event.event_id] = call
                run.calls.append(call)
        elif event.HasField("activity_task_started_event_attributes"):
            started = event.activity_task_started_event_attributes
            if started.scheduled_event_id in by_event:
                call = by_event[started.scheduled_event_id]
                call.attempts = started.attempt
                if started.HasField("last_failure"):
                    call.earlier_failure = await _failure(converter, started.last_failure)
        elif event.HasField("activity_task_completed_event_attributes"):
            done = event.activity_task_completed_event_attributes
            if done.scheduled_event_id in by_event:
                call = by_event[done.scheduled_event_id]
                kind = LlmCallResult if call.is_model_call else ActionResult
                [call.result] = await converter.decode(done.result.payloads, [kind])
        elif event.HasField("activity_task_failed_event_attributes"):
            failed = event.activity_task_failed_event_attributes
            if failed.scheduled_event_id in by_event:
                by_event[failed.scheduled_event_id].failure = await _failure(
                    converter, failed.failure
                )
        elif event.HasField("activity_task_timed_out_event_attributes"):
            timed_out = event.activity_task_timed_out_event_attributes
            if timed_out.scheduled_event_id in by_event:
                by_event[timed_out.scheduled_event_id].failure = await _failure(
                    converter, timed_out.failure
                )
        elif event.HasField("workflow_execution_signaled_event_attributes"):
            signaled = event.workflow_execution_signaled_event_attributes
            payloads = signaled.input.payloads
            payload = (await converter.decode(payloads))[0] if payloads else {}
            run.signals.append((signaled.signal_name, payload))
        elif event.HasField("child_workflow_execution_started_event_attributes"):
            child = event.child_workflow_execution_started_event_attributes
            run.children.append(child.workflow_execution.workflow_id)
    return run


async def read_runs(client: Client, workflow_id: str) -> list[RunHistory]:
    """The run and every child run under it, parents first; one level's read at once."""
    level = [await read_run(client, workflow_id)]
    runs = list(level)
    while level:
        children = [child for run in level for child in run.children]
        level = list(await asyncio.gather(*(read_run(client, child) for child in children)))
        runs += level
    return runs


async def _scheduled(converter: DataConverter, event: HistoryEvent) -> Call | None:
    scheduled = event.activity_task_scheduled_event_attributes
    name = scheduled.activity_type.name
    if name in NOT_CALLS or name.startswith(VALIDATOR_PREFIX):
        return None
    kind = LlmCallInput if name == LLM_CALL else ActionInput
    [request] = await converter.decode(scheduled.input.payloads, [kind])
    key = request.step_id
    if event.HasField("user_metadata") and event.user_metadata.HasField("summary"):
        [summary] = await converter.decode([event.user_metadata.summary], [str])
        key = str(summary).split(":", 1)[0]  # "KEY: what" (workflows/model_calls.py, steps.py)
    return Call(request.step_id, key, request)


async def _failure(converter: DataConverter, failure: Failure) -> BaseException:
    decoded = await converter.decode_failure(failure)
    while not isinstance(decoded, ApplicationError | TimeoutError) and decoded.__cause__:
        decoded = decoded.__cause__
    return decoded
