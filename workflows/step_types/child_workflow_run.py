"""How a `workflow` step runs: another definition as a child run of this one, within the
step's and the run's budgets and the depth its ancestors allow. Tools that are workflows
(llm_call_run.py) start their child runs here too."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError, ChildWorkflowError

with workflow.unsafe.imports_passed_through():
    from workflows.activity_options import failure_reason
    from workflows.contracts import RunInput, RunResult
    from workflows.definition import DEFAULT_MAX_DEPTH, MAX_DEPTH_LIMIT, Definition
    from workflows.step_results import Once, StepFailed, render_or_fail
    from workflows.step_types import BUILT_IN
    from workflows.step_types.child_workflow import WorkflowStep
    from workflows.step_types.llm_call import LlmCallStep

if TYPE_CHECKING:  # annotations only: steps.py dispatches to this module
    from workflows.errors import FailureType
    from workflows.steps import StepRunner

CHILD_ID_LIMIT_PATCH = "child-id-limit"
MAX_WORKFLOW_ID_LENGTH = 1000
"""Temporal's limit on a workflow id (limit.maxIDLength): a longer child id is refused when
the child starts, which would fail every workflow task of the parent."""


async def run(step: WorkflowStep, runner: StepRunner, context: dict[str, Any], key: str) -> Once:
    variables = render_or_fail(step.variables, context, f"{step.id}.variables")
    try:
        result = await child_run(runner, step.id, step.definition, variables, key, step.max_depth)
    except ChildWorkflowError as exc:
        raise StepFailed(f"step '{step.id}': child run failed: {failure_reason(exc)}", 1) from None
    return Once(result.outputs, 1, result.usage)


async def child_run(
    runner: StepRunner,
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
    limit = min(max_depth or DEFAULT_MAX_DEPTH, runner.max_depth or MAX_DEPTH_LIMIT)
    if runner.depth + 1 > limit:
        raise StepFailed(
            f"step '{step_id}': child run not started: runs may nest at most {limit} "
            f"deep below the top-level run (max_depth) and this run is {runner.depth} deep",
            0,
        )
    definition = runner.children.get(file)
    if definition is None:
        raise ApplicationError(
            f"step '{step_id}': definition {file!r} was not loaded with this run",
            type=FailureType.DEFINITION,
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
    ledgers = runner.budgets.of_step(step_id)
    hold, allowance = None, None
    if ledgers:  # the child spends from this run's budgets: it holds what is left of them
        hold, allowance = await runner.budgets.allow(ledgers, f"the child run of step '{key}'")
    try:
        result: RunResult = await workflow.execute_child_workflow(
            "YamlWorkflow",
            RunInput(
                definition=definition,
                children=needed_children(definition, runner.children),
                variables=variables,
                mock_providers=runner.mock_providers,
                llm_task_queue=runner.llm_task_queue,
                action_task_queue=runner.action_task_queue,
                token_ratios=runner.budgets.ratios if allowance else {},
                prices=runner.budgets.prices,
                allowance=allowance,
                depth=runner.depth + 1,
                max_depth=limit,
                script=runner.script.script if runner.script else None,
            ),
            id=child_id,
            result_type=RunResult,
            static_summary=f"{step_id}: {definition.workflow.name}",
        )
    except ChildWorkflowError:
        if hold is not None:  # a failed child reports no spend: count all it could have
            runner.budgets.settle(hold, hold.need)
        raise
    if hold is not None:
        runner.budgets.settle(hold, runner.budgets.spent_by_child(result))
    return result


def needed_children(
    definition: Definition, children: dict[str, Definition]
) -> dict[str, Definition]:
    """The definitions a child run can start, and theirs: not every definition loaded with
    its parent (an evaluation's shards would otherwise travel in each row's input). A step
    of a type not built in may start any of them: it gets them all."""
    needed: dict[str, Definition] = {}
    waiting = [definition]
    while waiting:
        for step in waiting.pop().workflow.steps:
            if isinstance(step, WorkflowStep):
                files = [step.definition]
            elif isinstance(step, LlmCallStep):
                files = [tool.workflow for tool in step.tools if tool.workflow]
            elif isinstance(step, BUILT_IN.models):
                continue
            else:
                return children
            for file in files:
                if file not in needed and file in children:
                    needed[file] = children[file]
                    waiting.append(children[file])
    return needed
