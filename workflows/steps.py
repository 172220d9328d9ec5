"""How each step type runs inside YamlWorkflow: templates rendered here, work dispatched as
activities (actions; LLM calls in workflows/model_calls.py), child workflows, timers and
signal waits."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, ChildWorkflowError

with workflow.unsafe.imports_passed_through():
    from workflows.activity_options import (
        HEARTBEAT_TIMEOUT,
        attempts_of,
        effect_key,
        failure_reason,
        retry_policy,
        timeout_of,
    )
    from workflows.budget import Budgets
    from workflows.contracts import (
        PACE,
        ActionInput,
        ActionResult,
        RunInput,
        RunResult,
        SecretSlot,
    )
    from workflows.definition import (
        DEFAULT_MAX_DEPTH,
        MAX_DEPTH_LIMIT,
        ActionStep,
        Definition,
        LlmCallStep,
        LlmDefaults,
        SetStep,
        Step,
        WaitForSignalStep,
        WorkflowStep,
    )
    from workflows.durations import parse_duration
    from workflows.errors import WorkflowError
    from workflows.model_calls import ModelCalls
    from workflows.step_results import (
        Drained,
        Once,
        StepFailed,
        render_or_fail,
        template_failure,
    )
    from workflows.template_limits import WORK_PER_BREAK, Work
    from workflows.templates import render_params

IN_WORKFLOW_BUDGET = 100
TEMPLATE_WORK_PATCH = "template-work-pacing"
SIGNAL_WAIT_DRAINS_PATCH = "signal-wait-continues-as-new"
CHILD_ID_LIMIT_PATCH = "child-id-limit"
MAX_WORKFLOW_ID_LENGTH = 1000
"""Temporal's limit on a workflow id (limit.maxIDLength): a longer child id is refused when
the child starts, which would fail every workflow task of the parent."""


@dataclass
class StepRunner(ModelCalls):
    defaults: LlmDefaults
    children: dict[str, Definition]
    mock_providers: list[str]
    signals: dict[str, list[Any]]
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
    _spent: int = 0
    _break: asyncio.Future[None] | None = None

    async def run_once(self, step: Step, context: dict[str, Any], key: str) -> Once:
        """Run a step once; `key` names this execution (step id and item index)."""
        if isinstance(step, LlmCallStep):
            return await self._llm_call(step, context, key)
        if isinstance(step, SetStep):
            await self.pace()
            return Once(
                {
                    name: render_or_fail(value, context, f"{key}.values.{name}")
                    for name, value in step.values.items()
                }
            )
        if isinstance(step, WaitForSignalStep):
            return await self._wait_for_signal(step)
        if isinstance(step, WorkflowStep):
            return await self._child(step, context, key)
        return await self._action(step, context, key)

    async def pace(self) -> None:
        """Work done inside the workflow (no activity) never yields to the worker; after
        IN_WORKFLOW_BUDGET such steps, a no-op local activity ends the workflow task, so
        thousands of `set` steps or items stay under Temporal's 2 s deadlock limit. Heavy
        templates count too: WORK_PER_BREAK operations take a break of their own."""
        self._spent += 1
        while self._spent > IN_WORKFLOW_BUDGET or self._heavy():
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
        self.work.spent = 0

    async def _wait_for_signal(self, step: WaitForSignalStep) -> Once:
        timeout = parse_duration(step.timeout) if step.timeout is not None else None
        workflow.set_current_details(f"waiting for signal '{step.signal}' (step {step.id})")
        # A long wait while signals pile up grows the history: then the run continues as
        # new and the next run waits again. Runs from before this replay without it.
        may_drain = workflow.patched(SIGNAL_WAIT_DRAINS_PATCH)
        info = workflow.info()

        def arrived() -> bool:
            return bool(self.signals.get(step.signal))

        try:
            while True:  # waits at least once even when the signal is here: the same commands
                await workflow.wait_condition(
                    lambda drain=may_drain: (
                        arrived() or (drain and info.is_continue_as_new_suggested())
                    ),
                    timeout=timeout,
                )
                if arrived():
                    break
                if self.draining():
                    raise Drained()
                may_drain = False  # not draining after all: wait for the signal alone
        except TimeoutError:
            raise StepFailed(
                f"step '{step.id}': no '{step.signal}' signal within {step.timeout}", 0
            ) from None
        payload = self.signals[step.signal].pop(0)
        return Once(payload if isinstance(payload, dict) else {"value": payload})

    async def _child(self, step: WorkflowStep, context: dict[str, Any], key: str) -> Once:
        variables = render_or_fail(step.variables, context, f"{step.id}.variables")
        try:
            result = await self.child_run(step.id, step.definition, variables, key, step.max_depth)
        except ChildWorkflowError as exc:
            raise StepFailed(
                f"step '{step.id}': child run failed: {failure_reason(exc)}", 1
            ) from None
        return Once(result.outputs, 1, result.usage)

    async def child_run(
        self,
        step_id: str,
        file: str,
        variables: dict[str, Any],
        key: str,
        max_depth: int | None = None,
    ) -> RunResult:
        """Run a definition loaded with this run as a child run (id: this run's id and
        `key`), spending from the step's and the run's budgets. A child deeper than the
        step's `max_depth` (or an ancestor's, whichever is lower) is not started: StepFailed.
        Runs from before depths were carried are all depth 0, so none is refused on replay."""
        limit = min(max_depth or DEFAULT_MAX_DEPTH, self.max_depth or MAX_DEPTH_LIMIT)
        if self.depth + 1 > limit:
            raise StepFailed(
                f"step '{step_id}': child run not started: runs may nest at most {limit} "
                f"deep below the top-level run (max_depth) and this run is {self.depth} deep",
                0,
            )
        definition = self.children.get(file)
        if definition is None:
            raise ApplicationError(
                f"step '{step_id}': definition {file!r} was not loaded with this run",
                type="DefinitionError",
                non_retryable=True,
            )
        child_id = f"{workflow.info().workflow_id}/{key}"
        if len(child_id) > MAX_WORKFLOW_ID_LENGTH and workflow.patched(CHILD_ID_LIMIT_PATCH):
            raise StepFailed(
                f"step '{step_id}': the child run's id would be {len(child_id)} characters, "
                f"over Temporal's limit of {MAX_WORKFLOW_ID_LENGTH}: start the run under a "
                "shorter id, or nest child runs less deeply",
                0,
            )
        ledgers = self.budgets.of_step(step_id)
        hold, allowance = None, None
        if ledgers:  # the child spends from this run's budgets: it holds what is left of them
            hold, allowance = await self.budgets.allow(ledgers, f"the child run of step '{key}'")
        try:
            result: RunResult = await workflow.execute_child_workflow(
                "YamlWorkflow",
                RunInput(
                    definition=definition,
                    children=self.children,
                    variables=variables,
                    mock_providers=self.mock_providers,
                    llm_task_queue=self.llm_task_queue,
                    action_task_queue=self.action_task_queue,
                    token_ratios=self.budgets.ratios if allowance else {},
                    prices=self.budgets.prices,
                    allowance=allowance,
                    depth=self.depth + 1,
                    max_depth=limit,
                ),
                id=child_id,
                result_type=RunResult,
                static_summary=f"{step_id}: {definition.workflow.name}",
            )
        except ChildWorkflowError:
            if hold is not None:  # a failed child reports no spend: count all it could have
                self.budgets.settle(hold, hold.need)
            raise
        if hold is not None:
            self.budgets.settle(hold, self.budgets.spent_by_child(result))
        return result

    async def _action(self, step: ActionStep, context: dict[str, Any], key: str) -> Once:
        try:
            params, slots = render_params(step.params, context)
        except WorkflowError as exc:
            raise template_failure(f"{key}.params", exc) from None
        if step.action == "sleep":
            try:
                duration = parse_duration(params.get("duration"))
            except (TypeError, ValueError) as exc:
                raise StepFailed(f"step '{step.id}': {exc}", 0) from None
            await workflow.sleep(duration, summary=f"{step.id}: sleep {params.get('duration')}")
            return Once({})
        policy = retry_policy(step.retry)
        idempotency_key, first_run_id = effect_key(key)
        try:
            result: ActionResult = await workflow.execute_activity(
                step.action,
                ActionInput(
                    step_id=step.id,
                    action=step.action,
                    params=params,
                    secrets=[SecretSlot(path=list(path), parts=parts) for path, parts in slots],
                    idempotency_key=idempotency_key,
                    first_run_id=first_run_id,
                ),
                result_type=ActionResult,
                start_to_close_timeout=timeout_of(step.timeout),
                heartbeat_timeout=HEARTBEAT_TIMEOUT,
                retry_policy=policy,
                task_queue=self.action_task_queue,
                summary=f"{key}: {step.action}",
            )
        except ActivityError as exc:
            attempts = attempts_of(exc, policy)
            raise StepFailed(
                f"step '{step.id}' ({step.action}) failed after {attempts} attempt(s): "
                f"{failure_reason(exc)}",
                attempts,
            ) from None
        return Once(_action_outputs(step, result.value), result.attempt)


def _action_outputs(step: ActionStep, value: Any) -> dict[str, Any]:
    """One declared output is the return value; several pick fields of a returned object."""
    if not step.outputs:
        return {"result": value}
    if len(step.outputs) == 1:
        return {step.outputs[0].name: value}
    fields = value if isinstance(value, dict) else {}
    return {output.name: fields.get(output.name) for output in step.outputs}
