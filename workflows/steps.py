"""StepRunner: what every step of a run shares while it runs (defaults, child definitions,
signals, budgets, task queues, pacing), and the one dispatch on step type. How each type
runs is in workflows/step_types/<type>_run.py; RUNNERS names one for every step type."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.budget import Budgets
    from workflows.contracts import PACE, LlmCallResult
    from workflows.definition import Definition, LlmDefaults
    from workflows.definition_parts import StepFields
    from workflows.scripts import ScriptPlayer
    from workflows.signal_buffer import SignalBuffer
    from workflows.step_results import Once
    from workflows.step_types import (
        BUILT_IN,
        ActionStep,
        LlmCallStep,
        SetStep,
        Step,
        StepTypes,
        WaitForSignalStep,
        WorkflowStep,
        action_run,
        child_workflow_run,
        llm_call_run,
        set_values_run,
        wait_for_signal_run,
    )
    from workflows.template_limits import WORK_PER_BREAK, Work

IN_WORKFLOW_BUDGET = 100
TEMPLATE_WORK_PATCH = "template-work-pacing"
STARTS_PER_BREAK = 200
STARTS_PATCH = "starts-paced"

Runner = Callable[[Any, "StepRunner", dict[str, Any], str], Awaitable[Once]]
"""How one step type runs: (step, runner, context, key) to what one execution produced."""

RUNNERS: dict[type[StepFields], Runner] = {
    LlmCallStep: llm_call_run.run,
    ActionStep: action_run.run,
    SetStep: set_values_run.run,
    WaitForSignalStep: wait_for_signal_run.run,
    WorkflowStep: child_workflow_run.run,
}
"""Every built-in step type's runner (tests/test_step_types.py fails when one is missing)."""


def missing_runners(
    step_types: StepTypes = BUILT_IN, runners: Mapping[type[StepFields], Runner] = RUNNERS
) -> list[str]:
    """The step types that have no runner: each would fail a run that used it."""
    return [name for name, model in step_types.by_name.items() if model not in runners]


@dataclass
class StepRunner:
    defaults: LlmDefaults
    children: dict[str, Definition]
    mock_providers: list[str]
    signals: SignalBuffer
    llm_task_queue: str | None = None
    action_task_queue: str | None = None
    draining: Callable[[], bool] = lambda: False
    """Whether the run is draining to continue as new (the schedule says)."""
    work: Work = field(default_factory=Work)
    """Template operations spent since the last break (the run's context holds it)."""
    budgets: Budgets = field(default_factory=Budgets)
    depth: int = 0
    """How many runs this run is below the top-level run."""
    max_depth: int | None = None
    """The deepest child run this run's ancestors allow (None: the top-level run)."""
    runners: Mapping[type[StepFields], Runner] = field(default_factory=lambda: RUNNERS)
    """How each step type runs (YamlWorkflow.runners)."""
    script: ScriptPlayer | None = None
    """A test's script (workflows/scripts.py); None for every other run."""
    prepared: dict[str, LlmCallResult] = field(default_factory=dict)
    """First replies a batched for_each's batch gave, by step id/item (workflows/batch_run.py)."""
    _spent: int = 0
    _starts: int = 0
    _break: asyncio.Future[None] | None = None

    async def run_once(self, step: Step, context: dict[str, Any], key: str) -> Once:
        """Run a step once; `key` names this execution (step id and item index)."""
        await self._pace_starts()
        return await self.runners[type(step)](step, self, context, key)

    async def pace(self) -> None:
        """Work done inside the workflow (no activity) never yields to the worker; after
        IN_WORKFLOW_BUDGET such steps, a no-op local activity ends the workflow task, so
        thousands of `set` steps or items stay under Temporal's 2 s deadlock limit. Heavy
        templates count too: WORK_PER_BREAK operations take a break of their own."""
        self._spent += 1
        while self._spent > IN_WORKFLOW_BUDGET or self._heavy():
            await self._one_break()

    async def _pace_starts(self) -> None:
        """Starting a step or an item (rendering it, scheduling its activity) costs the
        workflow task time too: a thousand items started at once on a busy worker passed
        Temporal's 2 s deadlock limit. After STARTS_PER_BREAK starts a break ends the task,
        and the rest start after it. Runs from before this replay without it (patched; the
        patch is only asked once a break is due, so smaller runs record nothing)."""
        while self._starts >= STARTS_PER_BREAK and workflow.patched(STARTS_PATCH):
            await self._one_break()
        self._starts += 1

    async def _one_break(self) -> None:
        """Wait for the break under way, or take one: every waiter shares it."""
        if self._break is None or self._break.done():
            self._break = asyncio.ensure_future(self._take_break())
        await asyncio.shield(self._break)

    def _heavy(self) -> bool:
        return self.work.spent > WORK_PER_BREAK and workflow.patched(TEMPLATE_WORK_PATCH)

    async def _take_break(self) -> None:
        await workflow.execute_local_activity(
            PACE, start_to_close_timeout=timedelta(seconds=10), summary="pace"
        )
        self._spent = 0
        self._starts = 0
        self.work.spent = 0
