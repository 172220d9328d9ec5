"""The scheduler inside YamlWorkflow: starts each step once what it waits for has finished.

Everything here is deterministic and talks to the world only through `workflow.*`.

When Temporal suggests continuing as new (the history passed its suggested size), the
schedule drains: nothing new starts, what runs finishes, and the run ends with `drained`
set; its results and `rerun.unfinished_items` are what the next run reuses.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from graphlib import CycleError, TopologicalSorter
from typing import Any

from pydantic_core import to_jsonable_python
from temporalio import workflow
from temporalio.exceptions import ApplicationError

from workflows import search_attributes
from workflows.batch_run import BATCH_PATCH, batched_replies
from workflows.contracts import ItemResult, RunStatus, StepResult, Usage
from workflows.definition import Definition, Step
from workflows.errors import FailureType
from workflows.graph import dependencies, output_owners
from workflows.step_results import Drained, Once, StepFailed, render_or_fail
from workflows.step_types.llm_call import LlmCallStep
from workflows.steps import StepRunner
from workflows.tracing import step_span

PROGRESS_PATCH = "progress-search-attributes-throttled"
FOR_EACH_LIMIT_PATCH = "for-each-item-limit"
MAX_FOR_EACH_ITEMS = 10_000
"""Items one for_each step may run: more would stall the workflow task that starts them."""
PROGRESS_EVERY = timedelta(seconds=2)
"""Steps done and cost reach the run's search attributes at most this often while it moves
fast, and at once before it waits (signal, sleep, child run, pause) and when it ends: each
upsert is a server write, about 15% of the server's work per step when done every step."""
CONTINUE_AS_NEW_PATCH = "continue-as-new-when-suggested"
RUN_WIDE_CAP_PATCH = "run-wide-running-cap"
MAX_RUNNING = 1000
"""Steps and items one run has under way at once, whatever its steps' concurrency: Temporal
refuses a run more than 2,000 pending activities or child runs, which would fail every
workflow task. More wait their turn, in order."""


class Schedule:
    """Starts each step once what it waits for has finished; a failure stops the rest."""

    def __init__(
        self,
        definition: Definition,
        runner: StepRunner,
        context: dict[str, Any],
        status: RunStatus,
        reuse_items: dict[str, dict[int, ItemResult]],
    ):
        self.steps = definition.workflow.steps
        raw = [step.model_dump(by_alias=True) for step in self.steps]
        self.waits = dependencies(raw, output_owners(raw))
        self.runner = runner
        self.context = context
        self.status = status
        self.results: dict[str, StepResult] = {}
        self.carried = reuse_items
        """Items an earlier run finished, of for_each steps that did not finish there."""
        self.drained = False
        # Runs started before the throttle replay with an upsert after every step.
        self.throttled = workflow.patched(PROGRESS_PATCH)
        # Runs from before the cap replay without it.
        self.running = asyncio.Semaphore(
            MAX_RUNNING if workflow.patched(RUN_WIDE_CAP_PATCH) else 2**31
        )
        self.published = (0, 0.0)  # set as the run started
        self.published_at = workflow.now()

    async def run(self, reuse: dict[str, StepResult]) -> dict[str, StepResult]:
        """Run every step once what it waits for is done; `reuse` results stand in for steps
        an earlier run finished."""
        order = {step.id: index for index, step in enumerate(self.steps)}
        try:
            await self._loop(self._sorter(order), order, reuse)
        finally:
            if self.throttled:
                self._publish(force=True)
        self.status.running = []
        return self.results

    async def _loop(
        self,
        sorter: TopologicalSorter[str],
        order: dict[str, int],
        reuse: dict[str, StepResult],
    ) -> None:
        waiting: list[str] = []  # ready, not started yet (while paused or draining)
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
            if self.draining():
                if not running:
                    return
            elif self.status.paused and not running:
                if self.throttled:
                    self._publish(force=True)
                workflow.set_current_details("paused: send the 'resume' signal to go on")
                await workflow.wait_condition(lambda: not self.status.paused)
            if not self.status.paused and not self.drained:
                for step_id in waiting:
                    step = self.steps[order[step_id]]
                    running[step_id] = asyncio.create_task(self._run_step(step))
                waiting = []
            self.status.running = list(running)
            if not running:
                continue
            self._progress(running)
            if self.throttled and any(self.steps[order[i]].may_wait_long() for i in running):
                self._publish(force=True)
            done, _ = await workflow.wait(
                list(running.values()), return_when=asyncio.FIRST_COMPLETED
            )
            for step_id in sorted(
                (i for i, t in running.items() if t in done), key=order.__getitem__
            ):
                task = running.pop(step_id)
                error = task.exception()
                if isinstance(error, Drained):
                    continue
                if error is not None:
                    self._failed(step_id, str(error), 0, 0)
                    await self._cancel_siblings(running)
                    raise error
                self._record(self.steps[order[step_id]], task.result())
                sorter.done(step_id)

    def draining(self) -> bool:
        """Temporal suggests continuing as new once the history is large (4,096 events or
        4 MiB by default; the hard limit is 51,200 events): from then on nothing new starts.
        Older runs replay without it (patched)."""
        if not self.drained and workflow.info().is_continue_as_new_suggested():
            self.drained = workflow.patched(CONTINUE_AS_NEW_PATCH)
        return self.drained

    def _sorter(self, order: dict[str, int]) -> TopologicalSorter[str]:
        """graphlib orders the steps; a definition that was never validated may still
        name unknown steps or hold a cycle, which fails the run with the reason."""
        known = set(order)
        for step_id, waits in self.waits.items():
            unknown = sorted(waits - known)
            if unknown:
                raise ApplicationError(
                    f"step '{step_id}' waits for unknown step(s) {', '.join(unknown)}",
                    type=FailureType.DEFINITION,
                    non_retryable=True,
                )
        sorter = TopologicalSorter(self.waits)
        try:
            sorter.prepare()
        except CycleError as exc:
            raise ApplicationError(
                f"dependency cycle: {' → '.join(exc.args[1])}",
                type=FailureType.DEFINITION,
                non_retryable=True,
            ) from None
        return sorter

    def _progress(self, running: dict[str, Any]) -> None:
        details = f"{len(self.results)}/{len(self.steps)} steps done; running: {', '.join(running)}"
        if self.drained:
            details += " (the history is large: then the run continues as new)"
        workflow.set_current_details(self.runner.budgets.waiting() or details)

    async def _cancel_siblings(self, running: dict[str, asyncio.Task[StepResult]]) -> None:
        """A failing step stops its still-running siblings, except `on_error: continue` ones."""
        steps = {step.id: step for step in self.steps}
        for step_id, task in running.items():
            if steps[step_id].on_error != "continue":
                task.cancel()
        await asyncio.gather(*running.values(), return_exceptions=True)

    def _failed(self, step_id: str, error: str, attempts: int, duration_ms: int) -> None:
        """The step that fails the run shows in the status query with why (first word
        wins). Only the query's state: nothing is recorded in history."""
        if step_id not in self.status.steps:
            self.status.steps[step_id] = StepResult(
                status="failed",
                outputs=None,
                attempts=attempts,
                duration_ms=duration_ms,
                usage=Usage(),
                error=error,
            )

    def _record(self, step: Step, result: StepResult) -> None:
        self.results[step.id] = result
        self.context["steps"][step.id] = {"status": result.status, "outputs": result.outputs}
        for name in step.output_names():
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
        if self.throttled:
            self._publish(force=False)
        else:
            self._upsert_progress()

    def _publish(self, force: bool) -> None:
        """Steps done and cost to the search attributes, when they changed and either
        `force` or PROGRESS_EVERY has passed since the last time."""
        if (len(self.results), self.status.usage.cost_usd) == self.published:
            return
        if force or workflow.now() - self.published_at >= PROGRESS_EVERY:
            self._upsert_progress()

    def _upsert_progress(self) -> None:
        self.published = (len(self.results), self.status.usage.cost_usd)
        self.published_at = workflow.now()
        workflow.upsert_search_attributes(
            [
                search_attributes.STEPS_DONE.value_set(self.published[0]),
                search_attributes.COST_USD.value_set(self.published[1]),
            ]
        )

    async def _run_step(self, step: Step) -> StepResult:
        with step_span(step.id, step.type):
            try:
                return await self._run_step_traced(step)
            except Drained as drained:  # not an error: raised past the span, which ends well
                stopped = drained
        raise stopped

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
                async with self.running:
                    once = await self.runner.run_once(step, context, step.id)
            else:
                once = await self._for_each(step, context)
        except StepFailed as exc:
            if step.on_error != "continue":
                self._failed(step.id, str(exc), exc.attempts, _elapsed_ms(started))
                raise ApplicationError(
                    str(exc), type=FailureType.STEP_FAILED, non_retryable=True
                ) from None
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
                type=FailureType.TEMPLATE,
                non_retryable=True,
            )
        if len(items) > MAX_FOR_EACH_ITEMS and workflow.patched(FOR_EACH_LIMIT_PATCH):
            raise ApplicationError(
                f"step '{step.id}': for_each gave {len(items)} items, over the limit of "
                f"{MAX_FOR_EACH_ITEMS}: split the work into child runs (a `workflow` step)",
                type=FailureType.TEMPLATE,
                non_retryable=True,
            )
        limit = asyncio.Semaphore(step.concurrency)
        finished = {  # items an earlier run finished, while the item is still the same
            index: done
            for index, done in self.carried.get(step.id, {}).items()
            if index < len(items) and _same_item(done.item, items[index])
        }
        self.status.items[step.id] = finished  # the status query shows items as they finish
        if isinstance(step, LlmCallStep) and step.batch and workflow.patched(BATCH_PATCH):
            await self._batch(step, context, items, finished)

        async def one(index: int, item: Any) -> Once | None:
            if index in finished:  # an earlier run did this item
                done = finished[index]
                return Once(done.outputs, done.attempts, done.usage)
            async with limit, self.running:
                if self.draining():
                    return None
                once = await self.runner.run_once(
                    step, _item_context(step, context, items, index), f"{step.id}/{index}"
                )
            finished[index] = ItemResult(
                item=item, outputs=once.outputs, attempts=once.attempts, usage=once.usage
            )
            return once

        tasks = [asyncio.create_task(one(index, item)) for index, item in enumerate(items)]
        try:
            gathered = await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        results = [result for result in gathered if result is not None]
        if len(results) < len(items):
            raise Drained()
        del self.status.items[step.id]
        found = sorted({name for result in results for name in result.outputs})
        declared = step.output_names()
        names = declared + [name for name in found if name not in declared]
        return Once(
            {name: [result.outputs.get(name) for result in results] for name in names},
            sum(result.attempts for result in results),
            sum((result.usage for result in results), Usage()),
        )

    async def _batch(
        self,
        step: LlmCallStep,
        context: dict[str, Any],
        items: list[Any],
        finished: dict[int, ItemResult],
    ) -> None:
        """The items' first calls answered by one provider batch (workflows/batch_run.py)."""
        contexts = {
            index: _item_context(step, context, items, index)
            for index in range(len(items))
            if index not in finished
        }

        def tell(text: str) -> None:
            self.status.batches[step.id] = text

        self.runner.prepared.update(await batched_replies(step, self.runner, contexts, tell))


def _item_context(
    step: Step, context: dict[str, Any], items: list[Any], index: int
) -> dict[str, Any]:
    """What an item's templates see: the loop variable and `loop`."""
    loop = {"index": index + 1, "index0": index, "length": len(items)}
    return {**context, step.as_: items[index], "loop": loop}


def _elapsed_ms(started: Any) -> int:
    return int((workflow.now() - started).total_seconds() * 1000)


def _same_item(carried: Any, item: Any) -> bool:
    """Items compared as they cross the wire: a tuple from `dictsort` comes back a list."""
    before: object = to_jsonable_python(carried, fallback=str)
    now: object = to_jsonable_python(item, fallback=str)
    return before == now
