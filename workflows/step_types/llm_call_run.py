"""How an `llm_call` step runs: its request rendered, the model and its fallbacks called as
activities (each reserving its worst case from the run's budgets), the reply turned into
outputs and checked (expressions and registered validators), re-asks, and with tools the
loop of workflows/tool_loop.py."""

from __future__ import annotations

from datetime import timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from workflows.activity_options import (
        HEARTBEAT_TIMEOUT,
        attempts_of,
        failure_reason,
        retry_policy,
        timeout_of,
    )
    from workflows.budget import DEFAULT_MAX_TOKENS
    from workflows.contracts import (
        LLM_CALL,
        VALIDATOR_PREFIX,
        ChatMessage,
        LlmCallInput,
        LlmCallResult,
        Usage,
        ValidatorInput,
        ValidatorResult,
    )
    from workflows.cost_options import standard_after, tier_name
    from workflows.errors import FailureType, WorkflowError
    from workflows.ledger import Spend
    from workflows.providers import MOCK
    from workflows.routing import route
    from workflows.step_results import Once, StepFailed, render_or_fail
    from workflows.step_types.child_workflow_run import child_run
    from workflows.step_types.llm_call import LlmCallStep, ValidateSpec
    from workflows.step_types.llm_messages import MessageSpec
    from workflows.structured import is_structured, outputs_schema
    from workflows.templates import render
    from workflows.tool_loop import LoopFailed, ToolLoop, describe_tools

if TYPE_CHECKING:  # annotations only: steps.py dispatches to this module
    from workflows.steps import StepRunner

TIER_PATCH = "service-tier-standard-after"
"""A step whose service tier gives way to the standard one after a wait (new in v1.2)."""
VALIDATOR_TIMEOUT = timedelta(seconds=30)
VALIDATOR_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_attempts=3)
"""A validator that raises is retried twice; its (False, errors) answer is not an error."""


def request_of(step: LlmCallStep, runner: StepRunner, context: dict[str, Any]) -> LlmCallInput:
    """The step's call with its templates rendered in `context` (provider and model are
    chosen per model tried); a batch sends each item's."""
    return LlmCallInput(
        step_id=step.id,
        provider="",
        model="",
        prompt=str(render_or_fail(step.prompt or "", context, f"{step.id}.prompt")),
        messages=conversation(step, context),
        images=[str(render_or_fail(url, context, f"{step.id}.images")) for url in step.images],
        system=step.system and str(render_or_fail(step.system, context, f"{step.id}.system")),
        temperature=_first(step.temperature, runner.defaults.temperature),
        max_tokens=_first(step.max_tokens, runner.defaults.max_tokens),
        response_schema=outputs_schema(step) if is_structured(step) else None,
        cache=_first(step.cache, runner.defaults.cache),
        service_tier=tier_name(_first(step.service_tier, runner.defaults.service_tier)),
    )


def conversation(step: LlmCallStep, context: dict[str, Any]) -> list[ChatMessage]:
    """The step's `messages` rendered, each `each` entry expanded into its messages once per
    element, in order. An element is bound by name, so its text is data: only the
    definition's own templates are rendered."""
    where = f"{step.id}.messages"
    messages: list[ChatMessage] = []
    for entry in step.messages or []:
        if isinstance(entry, MessageSpec):
            content = str(render_or_fail(entry.content, context, where))
            messages.append(ChatMessage(role=entry.role, content=content, cache=entry.cache))
            continue
        elements = render_or_fail(entry.each, context, where)
        if not isinstance(elements, list | None):
            raise _messages_failure(step, f"each must give a list, got {type(elements).__name__}")
        for index, element in enumerate(elements or []):
            loop = {"index": index + 1, "index0": index, "length": len(elements or [])}
            scope = {**context, entry.as_: element, "loop": loop}
            messages += [
                ChatMessage(role=turn.role, content=str(render_or_fail(turn.content, scope, where)))
                for turn in entry.messages
            ]
    if step.messages is not None and not messages:
        raise _messages_failure(
            step,
            "the conversation is empty (every 'each' gave no elements): add a message "
            "outside them, such as the question",
        )
    return messages


def _messages_failure(step: LlmCallStep, problem: str) -> ApplicationError:
    return ApplicationError(
        f"step {step.id!r}, field 'messages': {problem}",
        type=FailureType.TEMPLATE,
        non_retryable=True,
    )


async def run(step: LlmCallStep, runner: StepRunner, context: dict[str, Any], key: str) -> Once:
    call = request_of(step, runner, context)
    loop = None
    if step.tools:  # a loop of turns and tool calls until the model answers
        tools = await describe_tools(step, runner.children, runner.action_task_queue)
        call = call.model_copy(update={"tools": tools})
        loop = ToolLoop(
            step,
            key,
            context,
            partial(call_models, runner),
            partial(child_run, runner),
            runner.action_task_queue,
            runner.script,
        )
    attempts = 0
    usage = Usage()
    for reask in range(step.max_reasks + 1):
        if loop is None:
            reply = await call_models(runner, step, call, key)
        else:
            try:
                reply, call = await loop.answer(call)
            except LoopFailed as exc:
                raise StepFailed(str(exc), attempts + exc.attempts) from None
        attempts += reply.attempt
        usage += reply.usage
        outputs, problem = await _llm_outputs(step, reply, context, attempts)
        if problem is None:
            return Once(outputs, attempts, usage)
        workflow.metric_meter().create_counter("llm_reasks", "re-asks").add(1, {"step_id": step.id})
        if reask == step.max_reasks:
            raise StepFailed(
                f"step '{step.id}': the reply was still not accepted after "
                f"{step.max_reasks} re-ask(s): {problem}",
                attempts,
            )
        call = call.model_copy(
            update={
                "reasks": [
                    *call.reasks,
                    ChatMessage(role="assistant", content=reply.text),
                    ChatMessage(role="user", content=_reask_prompt(problem, call)),
                ]
            }
        )
    raise AssertionError("unreachable")


async def _llm_outputs(
    step: LlmCallStep, reply: LlmCallResult, context: dict[str, Any], attempts: int
) -> tuple[dict[str, Any], str | None]:
    if reply.invalid is not None:
        return {}, reply.invalid
    if reply.parsed is not None:
        outputs = reply.parsed
    else:
        outputs = {step.outputs[0].name if step.outputs else "text": reply.text}
    for check in step.validate_:
        if check.validator is not None:
            problem = await _validator(step, check, outputs, attempts)
            if problem is not None:
                return outputs, problem
            continue
        try:
            accepted = render(check.expr, {**context, **outputs})
        except WorkflowError as exc:
            return outputs, f"validate {check.expr!r}: {exc}"
        if not accepted:
            return outputs, check.message or f"validation failed: {check.expr}"
    return outputs, None


async def _validator(
    step: LlmCallStep, check: ValidateSpec, outputs: dict[str, Any], attempts: int
) -> str | None:
    """Why a registered validator rejects the outputs, or None. It is user code, so it
    runs as an activity (only for steps that name one: other runs replay unchanged)."""
    name = str(check.validator)
    try:
        result: ValidatorResult = await workflow.execute_activity(
            VALIDATOR_PREFIX + name,
            ValidatorInput(step_id=step.id, validator=name, outputs=outputs),
            result_type=ValidatorResult,
            start_to_close_timeout=VALIDATOR_TIMEOUT,
            retry_policy=VALIDATOR_RETRY,
            summary=f"{step.id}: validator {name}",
        )
    except ActivityError as exc:
        tries = attempts_of(exc, VALIDATOR_RETRY)
        raise StepFailed(
            f"step '{step.id}': validator '{name}' failed after {tries} attempt(s): "
            f"{failure_reason(exc)}",
            attempts,
        ) from None
    if result.valid:
        return None
    reasons = "; ".join(result.errors) or f"validator '{name}' rejected the reply"
    return f"{check.message}: {reasons}" if check.message else reasons


async def call_models(
    runner: StepRunner, step: LlmCallStep, call: LlmCallInput, key: str
) -> LlmCallResult:
    """The step's model, then its fallbacks in order, each with Temporal's retries; an
    item's first call that its step's batch answered is not made again."""
    prepared = runner.prepared.pop(key, None)
    if prepared is not None:
        await runner.pace()  # thousands of answered items are work inside the workflow
        return prepared
    policy = retry_policy(step.retry or runner.defaults.retry)
    timeout = timeout_of(step.timeout or runner.defaults.timeout)
    attempts = 0
    errors: list[str] = []
    for model_name in [step.model or runner.defaults.model or "", *step.fallback_models]:
        try:
            target = route(model_name)
        except ValueError as exc:
            raise ApplicationError(
                f"step '{step.id}': {exc}", type=FailureType.DEFINITION, non_retryable=True
            ) from None
        provider = MOCK if target.provider in runner.mock_providers else target.provider
        sent = call.model_copy(update={"provider": provider, "model": target.model})
        if runner.script is not None:  # a test's run: the script answers (workflows/scripts.py)
            sent.scripted = runner.script.replies(step.id, key)
        ledgers = runner.budgets.of_step(step.id)
        if ledgers:  # reserve the call's worst case (workflows/budget.py)
            sent.max_tokens = sent.max_tokens or DEFAULT_MAX_TOKENS
            hold = await runner.budgets.reserve_call(ledgers, sent, _call_of(step.id, key))
        call_once = partial(_call_activity, runner, timeout, policy, key)
        give_up = standard_after(_first(step.service_tier, runner.defaults.service_tier))
        try:
            if give_up is not None and sent.service_tier and workflow.patched(TIER_PATCH):
                try:
                    reply = await call_once(sent, give_up)
                except ActivityError as exc:  # the tier did not answer in time: standard
                    attempts += attempts_of(exc, policy)
                    errors.append(f"{model_name} at {sent.service_tier}: {failure_reason(exc)}")
                    sent = sent.model_copy(update={"service_tier": None})
                    if ledgers:  # reserve again, at the standard price
                        runner.budgets.settle(hold, Spend())
                        what = _call_of(step.id, key)
                        hold = await runner.budgets.reserve_call(ledgers, sent, what)
                    reply = await call_once(sent, None)
            else:
                reply = await call_once(sent, None)
        except ActivityError as exc:
            if sent.scripted is not None and runner.script is not None:
                runner.script.used(step.id, key, attempts_of(exc, policy))
            if ledgers:
                runner.budgets.settle(hold, Spend())
            workflow.metric_meter().create_counter("llm_model_failures", "models given up").add(
                1, {"step_id": step.id, "model": model_name}
            )
            attempts += attempts_of(exc, policy)
            reason = failure_reason(exc)
            errors.append(reason if target.model in reason else f"{model_name}: {reason}")
            continue
        if sent.scripted is not None and runner.script is not None:
            runner.script.used(step.id, key, reply.attempt)
        if ledgers:
            runner.budgets.settle(hold, Spend.of(reply.usage), reply.usage.input_tokens)
        reply.attempt += attempts
        return reply
    raise StepFailed(
        f"step '{step.id}' failed after {attempts} attempt(s): " + "; then ".join(errors),
        attempts,
    )


async def _call_activity(
    runner: StepRunner,
    timeout: timedelta,
    policy: RetryPolicy,
    key: str,
    sent: LlmCallInput,
    give_up: timedelta | None,
) -> LlmCallResult:
    """One model call with Temporal's retries; `give_up` bounds them all (schedule to close)."""
    result: LlmCallResult = await workflow.execute_activity(
        LLM_CALL,
        sent,
        result_type=LlmCallResult,
        start_to_close_timeout=timeout,
        schedule_to_close_timeout=give_up,
        heartbeat_timeout=HEARTBEAT_TIMEOUT,
        retry_policy=policy,
        task_queue=runner.llm_task_queue,
        summary=f"{key}: {sent.provider}/{sent.model}"  # key: step id/item
        + (f" ({sent.service_tier})" if sent.service_tier else ""),
    )
    return result


def _reask_prompt(problem: str, call: LlmCallInput) -> str:
    if call.response_schema is not None:
        return (
            f"Your reply was not accepted: {problem}. Reply again with only a JSON object "
            "matching the requested schema."
        )
    return f"Your reply was not accepted: {problem}. Reply again."


def _call_of(step_id: str, key: str) -> str:
    item = key.removeprefix(step_id).lstrip("/")
    return f"the call of step '{step_id}'" + (f" (item {item})" if item else "")


def _first(*values: Any) -> Any:
    return next((value for value in values if value is not None), None)
