"""What a run's page shows that its `status` query does not: the definition it runs and each
model call's prompt and reply, read once from the run's Temporal history (the only store of
them) through the client's data converter, so encrypted and externally stored payloads read
back as they were sent."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel
from temporalio.api.history.v1 import HistoryEvent

from engine.client import EngineClient
from engine.client_models import ExecutionStatus
from engine.temporal_errors import Where, temporal_errors
from workflows.contracts import (
    LLM_CALL,
    LOAD_DEFINITION,
    LlmCallInput,
    LlmCallResult,
    LoadedDefinition,
    RunInput,
    RunResult,
)
from workflows.definition import Definition


class Call(BaseModel):
    """One model call of a step, in the order the run made it."""

    step: str
    key: str = ""
    """The step id, with the item for a for_each item's call (`summarise/3`)."""
    model: str
    system: str | None = None
    prompt: str = ""
    messages: list[dict[str, str]] = []
    tool_results: list[dict[str, Any]] = []
    """What the tools answered to the step's previous call (a tool loop's next turn)."""
    reply: str | None = None
    tool_calls: list[dict[str, Any]] = []
    error: str | None = None


class RunAccount(BaseModel):
    execution_id: str = ""
    run_input: RunInput | None = None
    """What the run was started with (what a rerun starts again)."""
    definition: Definition | None = None
    variables: dict[str, Any] = {}
    calls: list[Call] = []
    children: dict[str, list[str]] = {}
    """The child runs each `workflow` step started, by step id."""
    result: RunResult | None = None
    """A completed run's result: its page needs no status query (which would replay the
    whole history on a worker for a run no longer cached)."""
    failure: str | None = None
    """Why the run failed, in its own words (the step and the provider's message)."""
    started_at: datetime | None = None
    closed_at: datetime | None = None

    def completed_status(self) -> ExecutionStatus | None:
        """A completed run's status, read from its history alone."""
        if self.result is None:
            return None
        declared = self.definition.workflow.variables if self.definition else {}
        variables = {name: spec.default for name, spec in declared.items()} | self.variables
        total = len(self.definition.workflow.steps) if self.definition else len(self.result.steps)
        return ExecutionStatus(
            workflow_name=self.result.workflow_name,
            total_steps=total,
            steps=self.result.steps,
            outputs=self.result.outputs,
            usage=self.result.usage,
            variables=variables,
            budgets=self.result.budgets,
            execution_id=self.execution_id,
            execution_status="completed",
            started_at=self.started_at,
            closed_at=self.closed_at,
        )

    def calls_by_step(self) -> dict[str, list[Call]]:
        """Each step's calls, for_each items' too, in the order they were made."""
        found: dict[str, list[Call]] = {}
        for call in self.calls:
            found.setdefault(call.step, []).append(call)
        return found


async def run_account(client: EngineClient, execution_id: str) -> RunAccount:
    """The definition, input variables and model calls of the run's latest history."""
    handle = client.temporal.get_workflow_handle(execution_id)
    settings = client.settings
    with temporal_errors(Where(settings.address, settings.namespace, execution_id)):
        history = await handle.fetch_history()
    convert = client.temporal.data_converter
    account = RunAccount(execution_id=execution_id)
    scheduled: dict[int, Call] = {}
    for event in history.events:
        if event.HasField("workflow_execution_started_event_attributes"):
            account.started_at = event.event_time.ToDatetime(tzinfo=UTC)
            payloads = event.workflow_execution_started_event_attributes.input.payloads
            [run_input] = await convert.decode(payloads, [RunInput])
            account.run_input = run_input
            account.definition = run_input.definition
            account.variables = run_input.variables
        elif event.HasField("activity_task_scheduled_event_attributes"):
            await _scheduled(convert, event, account, scheduled)
        elif event.HasField("activity_task_completed_event_attributes"):
            done = event.activity_task_completed_event_attributes
            await _completed(convert, done, account, scheduled.get(done.scheduled_event_id))
        elif event.HasField("workflow_execution_completed_event_attributes"):
            payloads = event.workflow_execution_completed_event_attributes.result.payloads
            [account.result] = await convert.decode(payloads, [RunResult])
            account.closed_at = event.event_time.ToDatetime(tzinfo=UTC)
        elif event.HasField("start_child_workflow_execution_initiated_event_attributes"):
            child = event.start_child_workflow_execution_initiated_event_attributes.workflow_id
            step = child.removeprefix(f"{execution_id}/").split("/", 1)[0]
            account.children.setdefault(step, []).append(child)
        elif event.HasField("workflow_execution_failed_event_attributes"):
            account.failure = event.workflow_execution_failed_event_attributes.failure.message
        elif event.HasField("activity_task_failed_event_attributes"):
            failed = event.activity_task_failed_event_attributes
            call = scheduled.get(failed.scheduled_event_id)
            if call is not None:
                call.error = failed.failure.message
    return account


async def _scheduled(
    convert: Any, event: HistoryEvent, account: RunAccount, scheduled: dict[int, Call]
) -> None:
    attributes = event.activity_task_scheduled_event_attributes
    if attributes.activity_type.name != LLM_CALL:
        if attributes.activity_type.name == LOAD_DEFINITION:
            scheduled[event.event_id] = Call(step=LOAD_DEFINITION, model="")
        return
    [given] = await convert.decode(attributes.input.payloads, [LlmCallInput])
    key = given.step_id
    if event.HasField("user_metadata") and event.user_metadata.HasField("summary"):
        with contextlib.suppress(Exception):  # the label only: "summarise/3: openai/gpt-4o"
            [summary] = await convert.decode([event.user_metadata.summary])
            key = str(summary).split(": ", 1)[0]
    call = Call(
        step=given.step_id,
        key=key,
        model=f"{given.provider}/{given.model}",
        system=given.system,
        prompt=given.prompt,
        messages=[m.model_dump() for m in given.messages],
        tool_results=[r.model_dump() for r in given.turns[-1].results] if given.turns else [],
    )
    scheduled[event.event_id] = call
    account.calls.append(call)


async def _completed(convert: Any, done: Any, account: RunAccount, call: Call | None) -> None:
    if call is None:
        return
    if call.step == LOAD_DEFINITION:  # a run started by file name: the definition it loaded
        [loaded] = await convert.decode(done.result.payloads, [LoadedDefinition])
        account.definition = loaded.definition
        return
    [result] = await convert.decode(done.result.payloads, [LlmCallResult])
    call.reply = result.text
    call.tool_calls = [t.model_dump() for t in result.tool_calls]
