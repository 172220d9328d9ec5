"""A run as the steps of its definition, for its page: each step's state in one word (waiting,
running, done, failed, skipped), whom it waits for, its outputs, calls and error. Pure: it reads
the run's status and its account from history (engine/web_history.py) and asks nothing."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel

from engine.client_models import ExecutionStatus
from engine.web_graph import Graph, layout
from engine.web_history import Call, RunAccount
from workflows.contracts import Usage
from workflows.definition import WaitForSignalStep
from workflows.graph import dependencies, output_owners

MAX_CALLS_SHOWN = 20
"""Calls shown per step: a 1,000-item for_each lists its first ones and counts the rest."""
StepState = Literal["waiting", "running", "done", "failed", "skipped"]
WORDS: dict[str, StepState] = {"completed": "done", "failed": "failed", "skipped": "skipped"}


class StepView(BaseModel):
    id: str
    name: str | None = None
    type: str
    state: StepState
    waits_for: list[str] = []
    attempts: int | None = None
    duration_ms: int | None = None
    usage: Usage | None = None
    outputs: str | None = None
    """Pretty JSON, shown as text."""
    error: str | None = None
    calls: list[Call] = []
    more_calls: int = 0
    items_done: int | None = None
    items_total: int | None = None
    signal: str | None = None
    """The signal a wait_for_signal step waits for, while it waits."""
    child: str | None = None
    """The definition a `workflow` step runs."""
    children: list[str] = []
    """The child runs it started (the first MAX_CALLS_SHOWN)."""


class RunView(BaseModel):
    status: ExecutionStatus
    failure: str | None = None
    steps: list[StepView]
    graph: Graph
    variables: str
    outputs: str
    done: int
    ended: bool


def pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str, sort_keys=True)


def run_view(status: ExecutionStatus, account: RunAccount) -> RunView:
    steps = account.definition.workflow.steps if account.definition else []
    raw = [step.model_dump(by_alias=True) for step in steps]
    waits = dependencies(raw, output_owners(raw)) if raw else {}
    calls = account.calls_by_step()
    views = [
        _step(step, status, calls.get(step.id, []), sorted(waits.get(step.id, ())))
        for step in steps
    ]
    for view in views:
        view.children = account.children.get(view.id, [])[:MAX_CALLS_SHOWN]
    known = {view.id for view in views}
    for step_id, result in status.steps.items():  # a definition unknown: the steps seen
        if step_id not in known:
            views.append(
                StepView(id=step_id, type="?", state=WORDS[result.status], attempts=result.attempts)
            )
    graph = layout(
        [view.id for view in views],
        {view.id: view.waits_for for view in views},
        {view.id: view.state for view in views},
    )
    return RunView(
        status=status,
        steps=views,
        graph=graph,
        failure=account.failure,
        variables=pretty(status.variables or account.variables),
        outputs=pretty(status.outputs),
        done=len(status.steps),
        ended=status.execution_status != "running",
    )


def _step(step: Any, status: ExecutionStatus, calls: list[Call], waits: list[str]) -> StepView:
    result = status.steps.get(step.id)
    view = StepView(
        id=step.id,
        name=getattr(step, "name", None),
        type=step.type,
        state=WORDS[result.status] if result else _unfinished(step.id, status),
        waits_for=waits,
        calls=calls[:MAX_CALLS_SHOWN],
        more_calls=max(0, len(calls) - MAX_CALLS_SHOWN),
        child=getattr(step, "definition", None) if step.type == "workflow" else None,
    )
    if result is None and calls and calls[-1].error is not None:
        view.state, view.error = "failed", calls[-1].error  # its run failed with it
    if result is not None:
        view.attempts, view.duration_ms, view.usage = (
            result.attempts,
            result.duration_ms,
            result.usage,
        )
        view.outputs = pretty(result.outputs) if result.outputs is not None else None
        view.error = result.error
    if step.for_each is not None:
        view.items_done = len(status.items.get(step.id, {}))
        if isinstance(step.for_each, list):
            view.items_total = len(step.for_each)
        if result is not None and view.items_total is not None:
            view.items_done = view.items_total
    if isinstance(step, WaitForSignalStep) and step.id in status.waiting_signals:
        view.signal = status.waiting_signals[step.id]
    return view


def _unfinished(step_id: str, status: ExecutionStatus) -> StepState:
    if status.execution_status == "running" and step_id in status.running:
        return "running"
    return "waiting"
