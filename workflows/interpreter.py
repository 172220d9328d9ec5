"""YamlWorkflow: the one generic workflow that runs any parsed definition.

It renders templates and decides order itself (pure, deterministic) and dispatches every
LLM call and action as an activity, so Temporal's history holds each rendered prompt and
each reply. Steps start as soon as what they wait for has finished (see graph.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta
from graphlib import CycleError, TopologicalSorter
from typing import Any

from temporalio import workflow
from temporalio.common import RawValue, RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from workflows import search_attributes
    from workflows.contracts import (
        LoadDefinitionInput,
        LoadedDefinition,
        RunInput,
        RunResult,
        RunStatus,
        StepResult,
        Usage,
    )
    from workflows.definition import Definition, Step, output_names
    from workflows.errors import WorkflowError
    from workflows.graph import dependencies, output_owners
    from workflows.steps import Once, StepFailed, StepRunner, failure_reason, render_or_fail
    from workflows.templates import SecretRefs
    from workflows.tracing import step_span
    from workflows.validation import resolve_variables

LOAD_DEFINITION = "load_definition"


@workflow.defn(name="YamlWorkflow")
class YamlWorkflow:
    def __init__(self) -> None:
        self._signals: dict[str, list[Any]] = {}
        self._status = RunStatus()

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
        """Signals are buffered by name, so one sent before its step waits is not lost."""
        payload = workflow.payload_converter().from_payload(args[0].payload) if args else {}
        self._signals.setdefault(name, []).append(payload)

    @workflow.run
    async def run(self, run_input: RunInput) -> RunResult:
        definition, children = run_input.definition, run_input.children
        if definition is None:
            loaded = await self._load(run_input.definition_file or "")
            definition, children = loaded.definition, loaded.children
        spec = definition.workflow
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
        info = workflow.info()
        context: dict[str, Any] = {
            **variables,
            "steps": {},
            "run": {"id": info.workflow_id, "started_at": info.start_time.isoformat()},
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
        schedule = _Schedule(definition, runner, context, self._status)
        results = await schedule.run(run_input.reuse)
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


class _Schedule:
    """Starts each step once what it waits for has finished; a failure stops the rest."""

    def __init__(
        self,
        definition: Definition,
        runner: StepRunner,
        context: dict[str, Any],
        status: RunStatus,
    ):
        self.steps = definition.workflow.steps
        raw = [step.model_dump(by_alias=True) for step in self.steps]
        self.waits = dependencies(raw, output_owners(raw))
        self.runner = runner
        self.context = context
        self.status = status
        self.results: dict[str, StepResult] = {}

    async def run(self, reuse: dict[str, StepResult]) -> dict[str, StepResult]:
        """Run every step once what it waits for is done; `reuse` results stand in for steps
        an earlier run finished."""
        order = {step.id: index for index, step in enumerate(self.steps)}
        sorter = self._sorter(order)
        waiting: list[str] = []  # ready, not started yet (while paused)
        running: dict[str, asyncio.Task[StepResult]] = {}
        while sorter.is_active():
            waiting += sorted(sorter.get_ready(), key=order.__getitem__)
            reused = [step_id for step_id in waiting if step_id in reuse]
            for step_id in reused:
                waiting.remove(step_id)
                self._record(self.steps[order[step_id]], reuse[step_id])
                sorter.done(step_id)
            if reused:
                continue
            if self.status.paused and not running:
                workflow.set_current_details("paused: send the 'resume' signal to go on")
                await workflow.wait_condition(lambda: not self.status.paused)
            if not self.status.paused:
                for step_id in waiting:
                    step = self.steps[order[step_id]]
                    running[step_id] = asyncio.create_task(self._run_step(step))
                waiting = []
            self.status.running = list(running)
            if not running:
                continue
            self._progress(running)
            done, _ = await workflow.wait(
                list(running.values()), return_when=asyncio.FIRST_COMPLETED
            )
            for step_id in sorted((i for i, t in running.items() if t in done), key=order.get):
                task = running.pop(step_id)
                error = task.exception()
                if error is not None:
                    await self._cancel_siblings(running)
                    raise error
                self._record(self.steps[order[step_id]], task.result())
                sorter.done(step_id)
        self.status.running = []
        return self.results

    def _sorter(self, order: dict[str, int]) -> TopologicalSorter[str]:
        """graphlib orders the steps; a definition that was never validated may still
        name unknown steps or hold a cycle, which fails the run with the reason."""
        for step_id, waits in self.waits.items():
            unknown = sorted(waits - set(order))
            if unknown:
                raise ApplicationError(
                    f"step '{step_id}' waits for unknown step(s) {', '.join(unknown)}",
                    type="DefinitionError",
                    non_retryable=True,
                )
        sorter = TopologicalSorter(self.waits)
        try:
            sorter.prepare()
        except CycleError as exc:
            raise ApplicationError(
                f"dependency cycle: {' → '.join(exc.args[1])}",
                type="DefinitionError",
                non_retryable=True,
            ) from None
        return sorter

    def _progress(self, running: dict[str, Any]) -> None:
        workflow.set_current_details(
            f"{len(self.results)}/{len(self.steps)} steps done; running: {', '.join(running)}"
        )

    async def _cancel_siblings(self, running: dict[str, asyncio.Task[StepResult]]) -> None:
        """A failing step stops its still-running siblings, except `on_error: continue` ones."""
        steps = {step.id: step for step in self.steps}
        for step_id, task in running.items():
            if steps[step_id].on_error != "continue":
                task.cancel()
        await asyncio.gather(*running.values(), return_exceptions=True)

    def _record(self, step: Step, result: StepResult) -> None:
        self.results[step.id] = result
        self.context["steps"][step.id] = {"status": result.status, "outputs": result.outputs}
        for name in output_names(step):
            value = None if result.outputs is None else result.outputs.get(name)
            self.context[name] = self.status.outputs[name] = value
        self.status.steps[step.id] = result
        self.status.usage += result.usage
        workflow.logger.info(
            "step finished",
            extra={
                "step_id": step.id,
                "status": result.status,
                "attempts": result.attempts,
                "duration_ms": result.duration_ms,
                "cost_usd": result.usage.cost_usd,
            },
        )
        workflow.upsert_search_attributes(
            [
                search_attributes.STEPS_DONE.value_set(len(self.results)),
                search_attributes.COST_USD.value_set(self.status.usage.cost_usd),
            ]
        )

    async def _run_step(self, step: Step) -> StepResult:
        with step_span(step.id, step.type):
            return await self._run_step_traced(step)

    async def _run_step_traced(self, step: Step) -> StepResult:
        started = workflow.now()
        context = self.context
        if step.when is not None and not render_or_fail(step.when, context, f"{step.id}.when"):
            await self.runner.pace()  # a skip, too, is work done inside the workflow
            return StepResult(
                status="skipped", outputs=None, attempts=0, duration_ms=0, usage=Usage()
            )
        try:
            if step.for_each is None:
                once = await self.runner.run_once(step, context, step.id)
            else:
                once = await self._for_each(step, context)
        except StepFailed as exc:
            if step.on_error != "continue":
                raise ApplicationError(str(exc), type="StepFailed", non_retryable=True) from None
            given = any(output.default is not None for output in step.outputs)
            defaults = {output.name: output.default for output in step.outputs}
            return StepResult(
                status="failed",
                outputs=defaults if given else None,
                attempts=exc.attempts,
                duration_ms=_elapsed_ms(started),
                usage=Usage(),
                error=str(exc),
            )
        return StepResult(
            status="completed",
            outputs=once.outputs,
            attempts=once.attempts,
            duration_ms=_elapsed_ms(started),
            usage=once.usage,
        )

    async def _for_each(self, step: Step, context: dict[str, Any]) -> Once:
        items = render_or_fail(step.for_each, context, f"{step.id}.for_each")
        if not isinstance(items, list):
            raise ApplicationError(
                f"step '{step.id}': for_each must give a list, got {type(items).__name__}",
                type="TemplateError",
                non_retryable=True,
            )
        limit = asyncio.Semaphore(step.concurrency)

        async def one(index: int, item: Any) -> Once:
            loop = {"index": index + 1, "index0": index, "length": len(items)}
            async with limit:
                return await self.runner.run_once(
                    step, {**context, step.as_: item, "loop": loop}, f"{step.id}/{index}"
                )

        tasks = [asyncio.create_task(one(index, item)) for index, item in enumerate(items)]
        try:
            results = await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        found = sorted({name for result in results for name in result.outputs})
        names = output_names(step) + [name for name in found if name not in output_names(step)]
        return Once(
            {name: [result.outputs.get(name) for result in results] for name in names},
            sum(result.attempts for result in results),
            sum((result.usage for result in results), Usage()),
        )


def _elapsed_ms(started: Any) -> int:
    return int((workflow.now() - started).total_seconds() * 1000)
