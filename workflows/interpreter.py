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
    from workflows.activity_options import failure_reason
    from workflows.budget import Budgets
    from workflows.contracts import (
        LOAD_DEFINITION,
        BudgetStatus,
        LoadDefinitionInput,
        LoadedDefinition,
        RaiseBudget,
        RunInput,
        RunResult,
        RunStatus,
        Usage,
    )
    from workflows.definition import WaitForSignalStep, output_names
    from workflows.errors import FailureType, WorkflowError
    from workflows.payloads import PayloadRefused
    from workflows.rerun import unfinished_items
    from workflows.schedule import Schedule
    from workflows.signal_payloads import payload_problems
    from workflows.step_results import render_or_fail
    from workflows.steps import StepRunner
    from workflows.template_limits import WORK
    from workflows.templates import SecretRefs
    from workflows.validation import resolve_variables


SIGNAL_LIMITS_PATCH = "signal-limits"
SIGNAL_PAYLOAD_PATCH = "signal-payload-checks"
FAIR_SIGNAL_BUFFER_PATCH = "signal-buffer-fair-share"
MAX_REJECTED_SHOWN = 20
MAX_BUFFERED_SIGNALS = 100
"""Signals received and not consumed yet, over all names; more are dropped and counted. When
the buffer is full, the name holding most gives up its latest to a name holding fewer."""
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
        self._checks: bool | None = None
        self._fair: bool | None = None
        self._waiting_steps: dict[str, list[WaitForSignalStep]] = {}
        """The steps that wait for each signal name, once the definition is known."""
        self._known = False
        self._budgets = Budgets()

    @workflow.query(name="status")
    def status(self) -> RunStatus:
        """Steps done so far, their outputs and usage, what runs now, whether paused, and
        each budget's spend against its limit."""
        update: dict[str, Any] = {}
        running = set(self._status.running)
        waiting = {
            step.id: name
            for name, steps in self._waiting_steps.items()
            for step in steps
            if step.id in running
        }
        if waiting:
            update["waiting_signals"] = waiting
        if self._budgets:
            update["budgets"] = self._budgets.status()
        return self._status.model_copy(update=update) if update else self._status

    @workflow.update(name="budget")
    def raise_budget(self, request: RaiseBudget) -> BudgetStatus:
        """New limits for the run's budget (or a step's): a call paused on it goes on once
        it fits. Answers with the budget as it now stands."""
        return self._budgets.raise_limits(request)

    @raise_budget.validator
    def _check_budget(self, request: RaiseBudget) -> None:
        self._budgets.check_raise(request)

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
            return
        if self._checks is None:
            self._checks = workflow.patched(SIGNAL_PAYLOAD_PATCH)
        problems = payload_problems(self._waiting_steps.get(name, []), payload)
        if self._checks and problems:  # the step keeps waiting; status says why
            self._status.dropped_signals += 1
            rejected = [*self._status.rejected_signals, f"{name}: {'; '.join(problems)}"]
            self._status.rejected_signals = rejected[-MAX_REJECTED_SHOWN:]
            return
        if self._buffered() >= MAX_BUFFERED_SIGNALS:  # _accepted found it a fair share
            crowded = max(sorted(self._signals), key=lambda n: len(self._signals[n]))
            self._signals[crowded].pop()
            self._status.dropped_signals += 1
        self._signals.setdefault(name, []).append(payload)

    @workflow.update(dynamic=True)
    async def on_update(self, name: str, args: Sequence[RawValue]) -> str:
        """A step's signal sent as an update: checked against the waiting step's declared
        outputs, so a payload that does not fit is refused to its sender at once (by the
        validator; by the handler when the update came before the definition was read).
        Accepted, it is buffered as a signal would be."""
        await workflow.wait_condition(lambda: self._known)
        problem = self._update_problem(name, args)
        if problem:
            raise ApplicationError(problem, type=FailureType.SIGNAL_REFUSED, non_retryable=True)
        self._signals.setdefault(name, []).append(self._decoded(args))
        steps = ", ".join(f"'{step.id}'" for step in self._waiting_steps.get(name, []))
        return f"accepted by step {steps}"

    @on_update.validator
    def _check_update(self, name: str, args: Sequence[RawValue]) -> None:
        problem = self._update_problem(name, args) if self._known else None
        if problem:
            raise ValueError(problem)

    def _update_problem(self, name: str, args: Sequence[RawValue]) -> str | None:
        if name not in self._waiting_steps:
            waits = ", ".join(repr(n) for n in sorted(self._waiting_steps)) or "no signal"
            return f"no step waits for {name!r} (the run waits for {waits})"
        if self._buffered() >= MAX_BUFFERED_SIGNALS:
            return f"the run holds {MAX_BUFFERED_SIGNALS} signals not used yet"
        if args and args[0].payload.ByteSize() > MAX_SIGNAL_BYTES:
            return f"the payload is over {MAX_SIGNAL_BYTES} bytes"
        try:
            payload = self._decoded(args)
        except PayloadRefused as exc:  # too deep or too big (workflows/payloads.py)
            return f"the payload is refused: {exc.message}"
        except Exception:
            return "the payload does not decode"
        problems = payload_problems(self._waiting_steps[name], payload)
        return "; ".join(problems) or None

    @staticmethod
    def _decoded(args: Sequence[RawValue]) -> Any:
        if not args:
            return {}
        return workflow.payload_converter().from_payload(args[0].payload)

    def _buffered(self) -> int:
        return sum(len(buffered) for buffered in self._signals.values())

    def _fair_share(self, name: str) -> bool:
        """Whether a signal may take the place of the latest one of the name holding most.
        Until the definition says which names a run waits for (signals can arrive before
        its first line runs), a flood of one stray name must not crowd out an approval.
        Runs from before this replay as they ran: the signal is dropped."""
        if self._fair is None:
            self._fair = workflow.patched(FAIR_SIGNAL_BUFFER_PATCH)
        most = max(len(buffered) for buffered in self._signals.values())
        return self._fair and len(self._signals.get(name, [])) + 1 < most

    def _accepted(self, name: str, args: Sequence[RawValue]) -> Any | None:
        if self._wanted is not None and name not in self._wanted:
            return None
        if self._buffered() >= MAX_BUFFERED_SIGNALS and not self._fair_share(name):
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
        prices = run_input.prices
        if definition is None:
            loaded = await self._load(run_input.definition_file or "")
            definition, children = loaded.definition, loaded.children
            prices = prices or loaded.prices  # started by file name: the worker's prices
        spec = definition.workflow
        for name, earlier in run_input.signals.items():  # kept from before continue-as-new
            self._signals[name] = earlier + self._signals.get(name, [])
        for step in spec.steps:
            if isinstance(step, WaitForSignalStep):
                self._waiting_steps.setdefault(step.signal, []).append(step)
        waited = set(self._waiting_steps)
        self._known = True
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
            raise ApplicationError(
                str(exc), type=FailureType.VARIABLES, non_retryable=True
            ) from None
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
            depth=run_input.depth,
            max_depth=run_input.max_depth,
        )
        context[WORK] = runner.work
        self._budgets = runner.budgets = Budgets.for_run(
            definition, prices, run_input.allowance, run_input.budgets, run_input.token_ratios
        )
        self._budgets.on_change = lambda: workflow.set_current_details(
            self._budgets.waiting() or "going on: the budget was raised"
        )
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
                        "prices": prices,
                        "reuse": results,
                        "reuse_items": unfinished_items(
                            run_input.reuse_items, self._status.items, results
                        ),
                        "signals": self._signals,
                        "paused": self._status.paused,
                        "started_at": started_at,
                        "budgets": self._budgets.status(),
                        "token_ratios": self._budgets.ratios,
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
        usage = sum((r.usage for r in results.values()), Usage())
        workflow.metric_meter().create_histogram_float(
            "run_cost_usd", "estimated spend per completed run", "USD"
        ).record(usage.cost_usd)
        return RunResult(
            execution_id=info.workflow_id,
            workflow_name=spec.name,
            status="completed",
            outputs=outputs,
            steps={step.id: results[step.id] for step in spec.steps},
            usage=usage,
            budgets=self._budgets.status(),
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
                failure_reason(exc), type=FailureType.DEFINITION, non_retryable=True
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
            type=FailureType.INPUT,
            non_retryable=True,
        ) from None
