"""YamlWorkflow: the one generic workflow that runs any parsed definition.

It renders templates and decides order itself (pure, deterministic) and dispatches every
LLM call and action as an activity, so Temporal's history holds each rendered prompt and
each reply. Steps start as soon as what they wait for has finished (see graph.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any, ClassVar

from pydantic import ValidationError, create_model
from temporalio import workflow
from temporalio.common import RawValue, RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

# The worker runs workflows without Temporal's sandbox (engine/plugin.py, workflow_runner); passed
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
        ModelPrice,
        RaiseBudget,
        RunInput,
        RunResult,
        RunStatus,
        StepResult,
        Usage,
    )
    from workflows.definition import Definition, WorkflowSpec, definition_model
    from workflows.definition_parts import StepFields
    from workflows.errors import FailureType, WorkflowError
    from workflows.rerun import unfinished_items
    from workflows.schedule import Schedule
    from workflows.scripts import SCRIPT_PATCH, ScriptPlayer
    from workflows.signal_buffer import SignalBuffer
    from workflows.step_results import render_or_fail
    from workflows.step_types import BUILT_IN, StepTypes
    from workflows.steps import RUNNERS, Runner, StepRunner, missing_runners
    from workflows.template_limits import WORK
    from workflows.templates import SecretRefs
    from workflows.validation import resolve_variables


@workflow.defn(name="YamlWorkflow")
class YamlWorkflow:
    step_types: ClassVar[StepTypes] = BUILT_IN
    """The step types this workflow runs; a subclass may add its own (docs/extending.md)."""
    runners: ClassVar[Mapping[type[StepFields], Runner]] = RUNNERS
    """How each of `step_types` runs."""
    run_input_type: ClassVar[type[RunInput]] = RunInput
    """The run's input, whose definitions hold steps of `step_types`."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """A subclass that adds a step type without its runner fails where it is defined
        (when the worker starts), not in a run."""
        super().__init_subclass__(**kwargs)
        missing = missing_runners(cls.step_types, cls.runners)
        if missing:
            raise TypeError(f"{cls.__name__}: no runner for step type(s) {', '.join(missing)}")
        cls.run_input_type = run_input_model(cls.step_types)

    def __init__(self) -> None:
        self._status = RunStatus()
        self._signals = SignalBuffer(self._status)
        self._budgets = Budgets()

    @workflow.query(name="status")
    def status(self) -> RunStatus:
        """Steps done so far, their outputs and usage, what runs now, whether paused, and
        each budget's spend against its limit."""
        update: dict[str, Any] = {}
        waiting = self._signals.waiting(self._status.running)
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
        """Signals are buffered by name, so one sent before its step waits is not lost
        (workflows/signal_buffer.py says what is dropped and counted in `status`)."""
        self._signals.receive(name, args)

    @workflow.update(dynamic=True)
    async def on_update(self, name: str, args: Sequence[RawValue]) -> str:
        """A step's signal sent as an update: checked against the waiting step's declared
        outputs, so a payload that does not fit is refused to its sender at once (by the
        validator; by the handler when the update came before the definition was read).
        Accepted, it is buffered as a signal would be."""
        await workflow.wait_condition(lambda: self._signals.known)
        problem = self._signals.update_problem(name, args)
        if problem:
            raise ApplicationError(problem, type=FailureType.SIGNAL_REFUSED, non_retryable=True)
        return self._signals.accept(name, args)

    @on_update.validator
    def _check_update(self, name: str, args: Sequence[RawValue]) -> None:
        problem = self._signals.update_problem(name, args) if self._signals.known else None
        if problem:
            raise ValueError(problem)

    @workflow.run
    async def run(self, raw_input: Any) -> RunResult:
        """`raw_input` is a RunInput; it is decoded here, so input that does not fit fails
        the run with the reasons instead of failing every workflow task."""
        run_input = _decode_input(raw_input, type(self).run_input_type)
        definition, children, prices = await self._definition(run_input)
        context, runner = self._prepare(run_input, definition, children)
        self._budgets = runner.budgets = Budgets.for_run(
            definition, prices, run_input.allowance, run_input.budgets, run_input.token_ratios
        )
        self._budgets.on_change = lambda: workflow.set_current_details(
            self._budgets.waiting() or "going on: the budget was raised"
        )
        schedule = Schedule(definition, runner, context, self._status, run_input.reuse_items)
        runner.draining = schedule.draining
        results = await schedule.run(run_input.reuse)
        if len(results) < len(definition.workflow.steps):  # drained: the history grew large
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
                        "signals": self._signals.by_name,
                        "paused": self._status.paused,
                        "started_at": context["run"]["started_at"],
                        "budgets": self._budgets.status(),
                        "token_ratios": self._budgets.ratios,
                    }
                )
            )
        return self._finish(definition.workflow, context, results)

    async def _definition(
        self, run_input: RunInput
    ) -> tuple[Definition, dict[str, Definition], dict[str, ModelPrice]]:
        """The run's definition, its children and prices: from the input, or loaded once
        from the file it names (then the worker's prices, unless the input gave some)."""
        if run_input.definition is not None:
            return run_input.definition, run_input.children, run_input.prices
        loaded = await self._load(run_input.definition_file or "")
        return loaded.definition, loaded.children, run_input.prices or loaded.prices

    def _prepare(
        self, run_input: RunInput, definition: Definition, children: dict[str, Definition]
    ) -> tuple[dict[str, Any], StepRunner]:
        """Signals, status and search attributes set from the definition; the variables
        checked; the templates' context and the step runner made."""
        spec = definition.workflow
        self._signals.prepare(spec.steps, run_input.signals)
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
        context: dict[str, Any] = {
            **variables,
            "steps": {},
            "run": {
                "id": info.workflow_id,
                "started_at": run_input.started_at or info.start_time.isoformat(),
            },
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
            runners=type(self).runners,
        )
        if run_input.script is not None and workflow.patched(SCRIPT_PATCH):
            runner.script = ScriptPlayer(run_input.script)
        context[WORK] = runner.work
        return context, runner

    def _finish(
        self, spec: WorkflowSpec, context: dict[str, Any], results: dict[str, StepResult]
    ) -> RunResult:
        """The run's result: every step's outputs and the workflow's own, and its spend."""
        outputs: dict[str, Any] = {}
        for step in spec.steps:
            for name in step.output_names():
                outputs[name] = context.get(name)
        for name, template in spec.outputs.items():
            outputs[name] = render_or_fail(template, context, f"workflow output '{name}'")
        workflow.set_current_details(f"completed {len(spec.steps)} step(s)")
        usage = sum((r.usage for r in results.values()), Usage())
        workflow.metric_meter().create_histogram_float(
            "run_cost_usd", "estimated spend per completed run", "USD"
        ).record(usage.cost_usd)
        return RunResult(
            execution_id=workflow.info().workflow_id,
            workflow_name=spec.name,
            status="completed",
            outputs=outputs,
            steps={step.id: results[step.id] for step in spec.steps},
            usage=usage,
            budgets=self._budgets.status(),
        )

    async def _load(self, path: str) -> LoadedDefinition:
        try:
            loaded: LoadedDefinition = await workflow.execute_activity(
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
        return loaded


def _decode_input(raw: Any, model: type[RunInput]) -> RunInput:
    if isinstance(raw, RunInput):
        return raw
    try:
        return model.model_validate(raw)
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


def run_input_model(step_types: StepTypes) -> type[RunInput]:
    """RunInput for runs whose definitions have steps of `step_types`."""
    if step_types == BUILT_IN:
        return RunInput
    # a class made at run time: used in types, which no static type describes
    model: Any = definition_model(step_types)
    return create_model(
        "RunInput",
        __base__=RunInput,
        definition=(model | None, None),
        children=(dict[str, model], {}),
    )
