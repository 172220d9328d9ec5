"""YamlWorkflow: the one generic workflow that runs any parsed definition.

It renders templates and decides order itself (pure, deterministic) and dispatches every
LLM call as an activity, so Temporal's history holds each rendered prompt and each reply.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from workflows.contracts import (
        LlmCallInput,
        LlmCallResult,
        LoadDefinitionInput,
        RunInput,
        RunResult,
        StepResult,
        Usage,
    )
    from workflows.definition import Definition, LlmCallStep, LlmDefaults, RetrySpec
    from workflows.durations import parse_duration
    from workflows.errors import WorkflowError
    from workflows.routing import route
    from workflows.templates import render
    from workflows.validation import resolve_variables

LOAD_DEFINITION = "load_definition"
LLM_CALL = "llm_call"
DEFAULT_LLM_TIMEOUT = timedelta(seconds=60)
DEFAULT_RETRY = RetrySpec(max_attempts=5, initial_interval="1s", backoff=2.0, max_interval="1m")


@workflow.defn(name="YamlWorkflow")
class YamlWorkflow:
    @workflow.run
    async def run(self, run_input: RunInput) -> RunResult:
        definition = run_input.definition or await self._load(run_input.definition_file or "")
        spec = definition.workflow
        try:
            variables = resolve_variables(definition, run_input.variables)
        except WorkflowError as exc:
            raise ApplicationError(str(exc), type="VariablesError", non_retryable=True) from None
        info = workflow.info()
        context: dict[str, Any] = {
            **variables,
            "steps": {},
            "run": {"id": info.workflow_id, "started_at": info.start_time.isoformat()},
        }
        outputs: dict[str, Any] = {}
        results: dict[str, StepResult] = {}
        for index, step in enumerate(spec.steps, start=1):
            workflow.set_current_details(f"step {index}/{len(spec.steps)}: {step.id}")
            result = await self._llm_step(step, spec.defaults, context, run_input.mock_providers)
            results[step.id] = result
            context["steps"][step.id] = {"status": result.status, "outputs": result.outputs}
            for output in step.outputs:
                value = None if result.outputs is None else result.outputs.get(output.name)
                context[output.name] = outputs[output.name] = value
        for name, template in spec.outputs.items():
            outputs[name] = _render(template, context, f"workflow output '{name}'")
        workflow.set_current_details(f"completed {len(spec.steps)} step(s)")
        return RunResult(
            execution_id=info.workflow_id,
            workflow_name=spec.name,
            status="completed",
            outputs=outputs,
            steps=results,
            usage=sum((r.usage for r in results.values()), Usage()),
        )

    async def _load(self, path: str) -> Definition:
        try:
            return await workflow.execute_activity(
                LOAD_DEFINITION,
                LoadDefinitionInput(path=path),
                result_type=Definition,
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=RetryPolicy(maximum_attempts=3),
                summary=f"load {path}",
            )
        except ActivityError as exc:
            raise ApplicationError(
                _reason(exc), type="DefinitionError", non_retryable=True
            ) from None

    async def _llm_step(
        self,
        step: LlmCallStep,
        defaults: LlmDefaults,
        context: dict[str, Any],
        mock_providers: list[str],
    ) -> StepResult:
        started = workflow.now()
        if step.when is not None and not _render(step.when, context, f"step '{step.id}' when"):
            return StepResult(
                status="skipped", outputs=None, attempts=0, duration_ms=0, usage=Usage()
            )
        prompt = str(_render(step.prompt, context, f"step '{step.id}' prompt"))
        system = step.system and str(_render(step.system, context, f"step '{step.id}' system"))
        timeout = parse_duration(step.timeout or defaults.timeout or DEFAULT_LLM_TIMEOUT.seconds)
        policy = _retry_policy(step.retry or defaults.retry)
        attempts = 0
        errors: list[str] = []
        for model_name in [step.model or defaults.model or "", *step.fallback_models]:
            try:
                target = route(model_name)
            except ValueError as exc:
                raise ApplicationError(
                    f"step '{step.id}': {exc}", type="DefinitionError", non_retryable=True
                ) from None
            provider = "mock" if target.provider in mock_providers else target.provider
            call = LlmCallInput(
                step_id=step.id,
                provider=provider,
                model=target.model,
                prompt=prompt,
                system=system,
                temperature=_first(step.temperature, defaults.temperature),
                max_tokens=_first(step.max_tokens, defaults.max_tokens),
            )
            try:
                reply: LlmCallResult = await workflow.execute_activity(
                    LLM_CALL,
                    call,
                    result_type=LlmCallResult,
                    start_to_close_timeout=timeout,
                    retry_policy=policy,
                    summary=f"{step.id}: {provider}/{target.model}",
                )
            except ActivityError as exc:
                attempts += _attempts(exc, policy)
                errors.append(f"{model_name}: {_reason(exc)}")
                continue
            attempts += reply.attempt
            outputs = {step.outputs[0].name if step.outputs else "text": reply.text}
            return StepResult(
                status="completed",
                outputs=outputs,
                attempts=attempts,
                duration_ms=_elapsed_ms(started),
                usage=reply.usage,
            )
        message = f"step '{step.id}' failed after {attempts} attempt(s): " + "; then ".join(errors)
        if step.on_error == "continue":
            return StepResult(
                status="failed",
                outputs=None,
                attempts=attempts,
                duration_ms=_elapsed_ms(started),
                usage=Usage(),
                error=message,
            )
        raise ApplicationError(message, type="StepFailed", non_retryable=True)


def _render(template: str, context: dict[str, Any], where: str) -> Any:
    try:
        return render(template, context)
    except WorkflowError as exc:
        raise ApplicationError(
            f"{where}: {exc}", type="TemplateError", non_retryable=True
        ) from None


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


def _reason(exc: ActivityError) -> str:
    cause = exc.cause
    return getattr(cause, "message", None) or str(cause or exc)


def _first(*values: Any) -> Any:
    return next((value for value in values if value is not None), None)


def _elapsed_ms(started: Any) -> int:
    return int((workflow.now() - started).total_seconds() * 1000)
