"""How each step type runs inside YamlWorkflow: templates rendered here, work dispatched as
activities (LLM calls, actions), child workflows, timers and signal waits."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, ChildWorkflowError

with workflow.unsafe.imports_passed_through():
    from workflows.contracts import (
        LLM_CALL,
        PACE,
        VALIDATOR_PREFIX,
        ActionInput,
        ActionResult,
        ChatMessage,
        LlmCallInput,
        LlmCallResult,
        RunInput,
        RunResult,
        SecretSlot,
        Usage,
        ValidatorInput,
        ValidatorResult,
    )
    from workflows.definition import (
        ActionStep,
        Definition,
        LlmCallStep,
        LlmDefaults,
        RetrySpec,
        SetStep,
        Step,
        ValidateSpec,
        WaitForSignalStep,
        WorkflowStep,
    )
    from workflows.durations import parse_duration
    from workflows.errors import WorkflowError
    from workflows.routing import route
    from workflows.structured import is_structured, outputs_schema
    from workflows.template_limits import WORK_PER_BREAK, Work
    from workflows.templates import render, render_params

DEFAULT_TIMEOUT = timedelta(seconds=60)
IN_WORKFLOW_BUDGET = 100
TEMPLATE_WORK_PATCH = "template-work-pacing"
SIGNAL_WAIT_DRAINS_PATCH = "signal-wait-continues-as-new"
HEARTBEAT_TIMEOUT = timedelta(seconds=30)
"""Activities heartbeat every few seconds: a lost worker is noticed, a cancel reaches them."""
DEFAULT_RETRY = RetrySpec(max_attempts=5, initial_interval="1s", backoff=2.0, max_interval="1m")
VALIDATOR_TIMEOUT = timedelta(seconds=30)
VALIDATOR_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_attempts=3)
"""A validator that raises is retried twice; its (False, errors) answer is not an error."""


class StepFailed(Exception):
    """A step failed for good; `on_error` decides what happens next."""

    def __init__(self, message: str, attempts: int) -> None:
        super().__init__(message)
        self.attempts = attempts


class Drained(Exception):
    """A step stopped because the run is draining to continue as new: a for_each started
    no more items (those it finished stay in `RunStatus.items`), or a wait for a signal
    gave up its place (the next run waits again, with the buffered signals)."""


@dataclass
class Once:
    """What one execution of a step (or one for_each item) produced."""

    outputs: dict[str, Any]
    attempts: int = 0
    usage: Usage = field(default_factory=Usage)


@dataclass
class StepRunner:
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
    _spent: int = 0
    _break: asyncio.Future[None] | None = None

    async def run_once(self, step: Step, context: dict[str, Any], key: str) -> Once:
        """Run a step once; `key` names this execution (step id and item index)."""
        if isinstance(step, LlmCallStep):
            return await self._llm_call(step, context, key)
        if isinstance(step, SetStep):
            await self.pace()
            return Once(
                {name: render_or_fail(value, context, key) for name, value in step.values.items()}
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

    async def _llm_call(self, step: LlmCallStep, context: dict[str, Any], key: str) -> Once:
        call = LlmCallInput(
            step_id=step.id,
            provider="",
            model="",
            prompt=str(render_or_fail(step.prompt, context, f"{step.id}.prompt")),
            system=step.system and str(render_or_fail(step.system, context, f"{step.id}.system")),
            temperature=_first(step.temperature, self.defaults.temperature),
            max_tokens=_first(step.max_tokens, self.defaults.max_tokens),
            response_schema=outputs_schema(step) if is_structured(step) else None,
        )
        attempts = 0
        usage = Usage()
        for reask in range(step.max_reasks + 1):
            reply = await self._call_models(step, call, key)
            attempts += reply.attempt
            usage += reply.usage
            outputs, problem = await self._llm_outputs(step, reply, context, attempts)
            if problem is None:
                return Once(outputs, attempts, usage)
            workflow.metric_meter().create_counter("llm_reasks", "re-asks").add(
                1, {"step_id": step.id}
            )
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
        self, step: LlmCallStep, reply: LlmCallResult, context: dict[str, Any], attempts: int
    ) -> tuple[dict[str, Any], str | None]:
        if reply.invalid is not None:
            return {}, reply.invalid
        if reply.parsed is not None:
            outputs = reply.parsed
        else:
            outputs = {step.outputs[0].name if step.outputs else "text": reply.text}
        for check in step.validate_:
            if check.validator is not None:
                problem = await self._validator(step, check, outputs, attempts)
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
        self, step: LlmCallStep, check: ValidateSpec, outputs: dict[str, Any], attempts: int
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
            tries = _attempts(exc, VALIDATOR_RETRY)
            raise StepFailed(
                f"step '{step.id}': validator '{name}' failed after {tries} attempt(s): "
                f"{failure_reason(exc)}",
                attempts,
            ) from None
        if result.valid:
            return None
        reasons = "; ".join(result.errors) or f"validator '{name}' rejected the reply"
        return f"{check.message}: {reasons}" if check.message else reasons

    async def _call_models(self, step: LlmCallStep, call: LlmCallInput, key: str) -> LlmCallResult:
        """The step's model, then its fallbacks in order, each with Temporal's retries."""
        policy = _retry_policy(step.retry or self.defaults.retry)
        timeout = _timeout(step.timeout or self.defaults.timeout)
        attempts = 0
        errors: list[str] = []
        for model_name in [step.model or self.defaults.model or "", *step.fallback_models]:
            try:
                target = route(model_name)
            except ValueError as exc:
                raise ApplicationError(
                    f"step '{step.id}': {exc}", type="DefinitionError", non_retryable=True
                ) from None
            provider = "mock" if target.provider in self.mock_providers else target.provider
            try:
                reply: LlmCallResult = await workflow.execute_activity(
                    LLM_CALL,
                    call.model_copy(update={"provider": provider, "model": target.model}),
                    result_type=LlmCallResult,
                    start_to_close_timeout=timeout,
                    heartbeat_timeout=HEARTBEAT_TIMEOUT,
                    retry_policy=policy,
                    task_queue=self.llm_task_queue,
                    summary=f"{key}: {provider}/{target.model}",  # key: step id/item
                )
            except ActivityError as exc:
                workflow.metric_meter().create_counter("llm_model_failures", "models given up").add(
                    1, {"step_id": step.id, "model": model_name}
                )
                attempts += _attempts(exc, policy)
                reason = failure_reason(exc)
                errors.append(reason if target.model in reason else f"{model_name}: {reason}")
                continue
            reply.attempt += attempts
            return reply
        raise StepFailed(
            f"step '{step.id}' failed after {attempts} attempt(s): " + "; then ".join(errors),
            attempts,
        )

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
        definition = self.children.get(step.definition)
        if definition is None:
            raise ApplicationError(
                f"step '{step.id}': definition {step.definition!r} was not loaded with this run",
                type="DefinitionError",
                non_retryable=True,
            )
        variables = render_or_fail(step.variables, context, f"{step.id}.variables")
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
                ),
                id=f"{workflow.info().workflow_id}/{key}",
                result_type=RunResult,
                static_summary=f"{step.id}: {definition.workflow.name}",
            )
        except ChildWorkflowError as exc:
            raise StepFailed(
                f"step '{step.id}': child run failed: {failure_reason(exc)}", 1
            ) from None
        return Once(result.outputs, 1, result.usage)

    async def _action(self, step: ActionStep, context: dict[str, Any], key: str) -> Once:
        try:
            params, slots = render_params(step.params, context)
        except WorkflowError as exc:
            raise ApplicationError(
                f"{step.id}.params: {exc}", type="TemplateError", non_retryable=True
            ) from None
        if step.action == "sleep":
            try:
                duration = parse_duration(params.get("duration"))
            except (TypeError, ValueError) as exc:
                raise StepFailed(f"step '{step.id}': {exc}", 0) from None
            await workflow.sleep(duration, summary=f"{step.id}: sleep {params.get('duration')}")
            return Once({})
        policy = _retry_policy(step.retry)
        try:
            result: ActionResult = await workflow.execute_activity(
                step.action,
                ActionInput(
                    step_id=step.id,
                    action=step.action,
                    params=params,
                    secrets=[SecretSlot(path=list(path), parts=parts) for path, parts in slots],
                    idempotency_key=f"{workflow.info().workflow_id}/{key}",
                ),
                result_type=ActionResult,
                start_to_close_timeout=_timeout(step.timeout),
                heartbeat_timeout=HEARTBEAT_TIMEOUT,
                retry_policy=policy,
                task_queue=self.action_task_queue,
                summary=f"{key}: {step.action}",
            )
        except ActivityError as exc:
            attempts = _attempts(exc, policy)
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


def _reask_prompt(problem: str, call: LlmCallInput) -> str:
    if call.response_schema is not None:
        return (
            f"Your reply was not accepted: {problem}. Reply again with only a JSON object "
            "matching the requested schema."
        )
    return f"Your reply was not accepted: {problem}. Reply again."


def render_or_fail(template: Any, context: dict[str, Any], where: str) -> Any:
    try:
        return render(template, context)
    except WorkflowError as exc:
        raise ApplicationError(
            f"{where}: {exc}", type="TemplateError", non_retryable=True
        ) from None


def _timeout(value: Any) -> timedelta:
    return parse_duration(value) if value is not None else DEFAULT_TIMEOUT


def _retry_policy(spec: RetrySpec | None) -> RetryPolicy:
    merged = DEFAULT_RETRY.model_copy(update=(spec.model_dump(exclude_none=True) if spec else {}))
    return RetryPolicy(
        initial_interval=parse_duration(merged.initial_interval or 1),
        backoff_coefficient=merged.backoff or 2.0,
        maximum_interval=parse_duration(merged.max_interval or 60),
        maximum_attempts=merged.max_attempts or 5,
    )


def _attempts(exc: ActivityError, policy: RetryPolicy) -> int:
    """How many attempts the activity made: the activity reports it; a timeout does not."""
    cause = exc.cause
    if isinstance(cause, ApplicationError) and cause.details:
        detail = cause.details[0]
        if isinstance(detail, dict) and isinstance(detail.get("attempt"), int):
            return detail["attempt"]
    return policy.maximum_attempts


def failure_reason(exc: BaseException) -> str:
    """The activity's or child run's own message, not Temporal's wrapper around it."""
    cause = exc
    while isinstance(cause, ActivityError | ChildWorkflowError) and cause.cause is not None:
        cause = cause.cause
    return getattr(cause, "message", None) or str(cause)


def _first(*values: Any) -> Any:
    return next((value for value in values if value is not None), None)
