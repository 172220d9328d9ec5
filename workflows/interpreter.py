"""YamlWorkflow: the one generic workflow that runs any parsed definition.

It renders templates and decides order itself (pure, deterministic) and dispatches every
LLM call and action as an activity, so Temporal's history holds each rendered prompt and
each reply. Steps start as soon as what they wait for has finished (see graph.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from pydantic import ValidationError
from temporalio import workflow
from temporalio.common import RawValue, RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

# The worker runs workflows without Temporal's sandbox (worker.workflow_runner); passed
# through, these stay imported once should anyone replay under the sandbox instead.
with workflow.unsafe.imports_passed_through():
    from workflows import search_attributes
    from workflows.contracts import (
        LOAD_DEFINITION,
        LoadDefinitionInput,
        LoadedDefinition,
        RunInput,
        RunResult,
        RunStatus,
        Usage,
    )
    from workflows.definition import WaitForSignalStep, output_names
    from workflows.errors import WorkflowError
    from workflows.rerun import unfinished_items
    from workflows.schedule import Schedule
    from workflows.steps import StepRunner, failure_reason, render_or_fail
    from workflows.template_limits import WORK
    from workflows.templates import SecretRefs
    from workflows.validation import resolve_variables


SIGNAL_LIMITS_PATCH = "signal-limits"
MAX_BUFFERED_SIGNALS = 100
"""Signals received and not consumed yet, over all names; more are dropped and counted."""
MAX_SIGNAL_BYTES = 32 * 1024
"""A bigger signal payload is dropped and counted."""


@workflow.defn(name="YamlWorkflow")
class YamlWorkflow:
    def __init__(self) -> None:
        self._signals: dict[str, list[Any]] = {}
        self._status = RunStatus()
        self._wanted: set[str] | None = None
        """Signal names the definition waits for, once it is known."""
        self._limits: bool | None = None

    @workflow.query(name="status")
    def status(self) -> RunStatus:
        """Steps done so far, their outputs and usage, what runs now, and whether paused."""
        return self._status

    @workflow.signal(name="pause")
    def pause(self) -> None:
        """No new step starts while paused; running ones finish."""
        self._status.paused = True

    @workflow.signal(name="resume")
    def resume(self) -> None:
        self._status.paused = False

    @workflow.signal(dynamic=True)
    def on_signal(self, name: str, args: Sequence[RawValue]) -> None:
        """Signals are buffered by name, so one sent before its step waits is not lost.
        Signals no step waits for, payloads over MAX_SIGNAL_BYTES, payloads that do not
        decode and anything past MAX_BUFFERED_SIGNALS are dropped and counted in `status`."""
        if self._limits is None:
            self._limits = workflow.patched(SIGNAL_LIMITS_PATCH)
        if not self._limits:  # runs from before the limits replay as they ran
            payload = workflow.payload_converter().from_payload(args[0].payload) if args else {}
            self._signals.setdefault(name, []).append(payload)
            return
        payload = self._accepted(name, args)
        if payload is None:
            self._status.dropped_signals += 1
        else:
            self._signals.setdefault(name, []).append(payload)

    def _accepted(self, name: str, args: Sequence[RawValue]) -> Any | None:
        if self._wanted is not None and name not in self._wanted:
            return None
        if sum(len(buffered) for buffered in self._signals.values()) >= MAX_BUFFERED_SIGNALS:
            return None
        if not args:
            return {}
        if args[0].payload.ByteSize() > MAX_SIGNAL_BYTES:
            return None
        try:
            return workflow.payload_converter().from_payload(args[0].payload)
        except Exception:  # not JSON, or an encoding this worker does not read
            return None

    @workflow.run
    async def run(self, raw_input: Any) -> RunResult:
        """`raw_input` is a RunInput; it is decoded here, so input that does not fit fails
        the run with the reasons instead of failing every workflow task."""
        run_input = _decode_input(raw_input)
        definition, children = run_input.definition, run_input.children
        if definition is None:
            loaded = await self._load(run_input.definition_file or "")
            definition, children = loaded.definition, loaded.children
        spec = definition.workflow
        for name, earlier in run_input.signals.items():  # kept from before continue-as-new
            self._signals[name] = earlier + self._signals.get(name, [])
        waited = {step.signal for step in spec.steps if isinstance(step, WaitForSignalStep)}
        self._status.awaited_signals = sorted(waited)
        if self._limits is None:
            self._limits = workflow.patched(SIGNAL_LIMITS_PATCH)
        if self._limits:
            self._wanted = waited
            for name in set(self._signals) - self._wanted:
                self._status.dropped_signals += len(self._signals.pop(name))
        self._status.paused = self._status.paused or run_input.paused
        self._status.workflow_name = spec.name
        self._status.total_steps = len(spec.steps)
        workflow.upsert_search_attributes(
            [
                search_attributes.DEFINITION_NAME.value_set(spec.name),
                search_attributes.DEFINITION_VERSION.value_set(spec.version or ""),
                search_attributes.STEPS_DONE.value_set(0),
            ]
        )
        try:
            variables = resolve_variables(definition, run_input.variables)
        except WorkflowError as exc:
            raise ApplicationError(str(exc), type="VariablesError", non_retryable=True) from None
        self._status.variables = variables
        info = workflow.info()
        started_at = run_input.started_at or info.start_time.isoformat()
        context: dict[str, Any] = {
            **variables,
            "steps": {},
            "run": {"id": info.workflow_id, "started_at": started_at},
            "secrets": SecretRefs(),
        }
        runner = StepRunner(
            spec.defaults,
            children,
            run_input.mock_providers,
            self._signals,
            run_input.llm_task_queue,
            run_input.action_task_queue,
        )
        context[WORK] = runner.work
        schedule = Schedule(definition, runner, context, self._status, run_input.reuse_items)
        runner.draining = schedule.draining
        results = await schedule.run(run_input.reuse)
        if len(results) < len(spec.steps):  # drained: the history grew large
            workflow.continue_as_new(
                run_input.model_copy(
                    update={
                        "definition": definition,
                        "definition_file": None,
                        "children": children,
                        "reuse": results,
                        "reuse_items": unfinished_items(
                            run_input.reuse_items, self._status.items, results
                        ),
                        "signals": self._signals,
                        "paused": self._status.paused,
                        "started_at": started_at,
                    }
                )
            )
        outputs: dict[str, Any] = {}
        for step in spec.steps:
            for name in output_names(step):
                outputs[name] = context.get(name)
        for name, template in spec.outputs.items():
            outputs[name] = render_or_fail(template, context, f"workflow output '{name}'")
        workflow.set_current_details(f"completed {len(spec.steps)} step(s)")
        return RunResult(
            execution_id=info.workflow_id,
            workflow_name=spec.name,
            status="completed",
            outputs=outputs,
            steps={step.id: results[step.id] for step in spec.steps},
            usage=sum((r.usage for r in results.values()), Usage()),
        )

    async def _load(self, path: str) -> LoadedDefinition:
        try:
            return await workflow.execute_activity(
                LOAD_DEFINITION,
                LoadDefinitionInput(path=path),
                result_type=LoadedDefinition,
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=RetryPolicy(maximum_attempts=3),
                summary=f"load {path}",
            )
        except ActivityError as exc:
            raise ApplicationError(
                failure_reason(exc), type="DefinitionError", non_retryable=True
            ) from None


def _decode_input(raw: Any) -> RunInput:
    if isinstance(raw, RunInput):
        return raw
    try:
        return RunInput.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'input'}: {error['msg']}"
            for error in exc.errors()[:20]
        )
        raise ApplicationError(
            f"the run's input is not a valid RunInput: {problems}",
            type="InputError",
            non_retryable=True,
        ) from None
