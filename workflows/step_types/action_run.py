"""How an `action` step runs: its params rendered (secrets left as slots the activity fills),
the action run as an activity that retries by the step's policy; `sleep` is a durable timer."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from workflows.activity_options import (
        HEARTBEAT_TIMEOUT,
        attempts_of,
        effect_key,
        failure_reason,
        retry_policy,
        timeout_of,
    )
    from workflows.contracts import ActionInput, ActionResult, SecretSlot
    from workflows.durations import parse_duration
    from workflows.errors import WorkflowError
    from workflows.step_results import Once, StepFailed, template_failure
    from workflows.step_types.action import ActionStep
    from workflows.templates import render_params

if TYPE_CHECKING:  # annotations only: steps.py dispatches to this module
    from workflows.steps import StepRunner


async def run(step: ActionStep, runner: StepRunner, context: dict[str, Any], key: str) -> Once:
    try:
        params, slots = render_params(step.params, context)
    except WorkflowError as exc:
        raise template_failure(f"{key}.params", exc) from None
    if step.action == "sleep":
        try:
            duration = parse_duration(params.get("duration"))
        except (TypeError, ValueError) as exc:
            raise StepFailed(f"step '{step.id}': {exc}", 0) from None
        if runner.script is None or runner.script.action(step.id, key) is None:  # stubbed: no wait
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
                scripted=runner.script.action(step.id, key) if runner.script else None,
            ),
            result_type=ActionResult,
            start_to_close_timeout=timeout_of(step.timeout),
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
            retry_policy=policy,
            task_queue=runner.action_task_queue,
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
