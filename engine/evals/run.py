"""Starting an evaluation run, showing its progress, and reading back what each row's run
and in-run evaluator did, from the evaluation run and its shard runs alone: the run's
variables hold the rows and the evaluation's settings, so `eval --resume ID` needs no files."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from temporalio.client import WorkflowExecutionStatus
from temporalio.common import TypedSearchAttributes

from engine.client import EngineClient
from engine.evals.plan import Plan, aggregate_step, judge_step, row_step, shard_step
from workflows.contracts import RunResult, RunStatus, StepResult, Usage
from workflows.errors import RunFailed

POLL_SECONDS = 1.0


@dataclass
class RowRun:
    """One row's run of one variant, and what its in-run evaluators returned."""

    status: str
    """completed, failed, or pending (its shard never reached it)."""
    outputs: dict[str, Any] | None = None
    error: str | None = None
    usage: Usage = field(default_factory=Usage)
    duration_ms: int = 0
    judged: dict[int, StepResult] = field(default_factory=dict)
    """By evaluator index."""
    execution_id: str = ""
    """The row's own run (a child of its shard run), for its page."""
    reused_from: str | None = None
    """The earlier row run whose outputs this evaluation reused (engine/evals/cache.py)."""
    saved: Usage = field(default_factory=Usage)
    """What reusing saved: the earlier run's usage."""

    @property
    def row_usage(self) -> Usage:
        """What the row's run costs when it runs: paid now, or paid when it first ran."""
        return self.saved if self.reused_from else self.usage


@dataclass
class Collected:
    execution_id: str
    meta: dict[str, Any]
    rows: list[dict[str, Any]]
    """The dataset rows, as the evaluation run holds them."""
    runs: list[list[RowRun]]
    """By row, then variant."""
    usage: Usage
    seconds: float
    reused_runs: int = 0
    """Row runs taken from earlier evaluations instead of paid for."""
    reused_verdicts: int = 0
    """In-run evaluators' verdicts taken likewise."""
    saved: Usage = field(default_factory=Usage)
    reused_from: list[str] = field(default_factory=list)
    """The earlier evaluations they came from."""
    aggregates: dict[tuple[int, int], StepResult] = field(default_factory=dict)
    """What each aggregator's step returned, by (variant, evaluator index)."""


async def start(
    client: EngineClient,
    plan: Plan,
    execution_id: str,
    search_attributes: TypedSearchAttributes | None = None,
) -> str:
    started = await client.start(
        plan.loaded, plan.variables, execution_id=execution_id, search_attributes=search_attributes
    )
    return started.execution_id


async def wait(
    client: EngineClient, execution_id: str, progress: Callable[[str], None] | None = None
) -> Collected:
    """Wait for the evaluation run (through worker crashes and server restarts: it is a
    run like any other), showing progress, then read every shard's rows."""
    parent = client.temporal.get_workflow_handle(execution_id, result_type=RunResult)
    status = await parent.query("status", result_type=RunStatus)
    variables = status.variables
    meta, shards = variables.get("evaluation", {}), variables.get("shards", [])
    total = sum(len(shard) for shard in shards) * max(1, len(meta.get("variants", [])))
    began = time.monotonic()
    done: dict[int, RunStatus] = {}
    waiting = asyncio.ensure_future(client.result(execution_id))
    try:
        while not waiting.done():
            await asyncio.wait([waiting], timeout=POLL_SECONDS)
            if progress is not None and not waiting.done():
                counts = await _counts(client, execution_id, len(shards), done)
                progress(_progress_line(counts, total, time.monotonic() - began))
        with contextlib.suppress(RunFailed):
            await waiting
    finally:
        waiting.cancel()
    ended = (await parent.query("status", result_type=RunStatus)).steps
    described = await parent.describe()
    seconds = 0.0
    if described.close_time and described.start_time:
        seconds = (described.close_time - described.start_time).total_seconds()
    variants = len(meta.get("variants", [])) or 1
    evaluators = len(meta.get("evaluators", []))
    rows: list[dict[str, Any]] = []
    runs: list[list[RowRun]] = []
    usage = Usage()
    reused_runs, reused_verdicts, saved, sources = 0, 0, Usage(), set()
    for number, shard in enumerate(shards):
        steps = (await _shard_status(client, execution_id, number)).steps
        shard_id = f"{execution_id}/{shard_step(number)}"
        for index, row in enumerate(shard):
            rows.append(row["row"])
            cached: dict[str, Any] = row.get("cached") or {}
            found = []
            for variant in range(variants):
                step_id = row_step(index, variant)
                run = _row_run(steps.get(step_id))
                if run.status != "pending":
                    run.execution_id = f"{shard_id}/{step_id}"
                for evaluator in range(evaluators):
                    judge_id = judge_step(index, variant, evaluator)
                    judged = steps.get(judge_id)
                    if judged is not None:
                        run.judged[evaluator] = judged
                        usage += judged.usage
                    if judge_id in cached and judged is not None:
                        saved += Usage.model_validate(cached[judge_id]["usage"])
                        reused_verdicts += 1
                if step_id in cached and run.status == "completed":
                    earlier = cached[step_id]
                    run.reused_from = run.execution_id = earlier["from"]
                    run.saved = Usage.model_validate(earlier["usage"])
                    run.duration_ms = earlier["duration_ms"]
                    sources.add(earlier["from"].split("/")[0])
                    reused_runs += 1
                saved += run.saved
                usage += run.usage
                found.append(run)
            runs.append(found)
    aggregates = {
        (variant, evaluator): ended[aggregate_step(variant, evaluator)]
        for variant in range(variants)
        for evaluator in range(evaluators)
        if aggregate_step(variant, evaluator) in ended
    }
    return Collected(
        execution_id,
        meta,
        rows,
        runs,
        usage,
        seconds,
        reused_runs,
        reused_verdicts,
        saved,
        sorted(sources),
        aggregates,
    )


def _row_run(step: StepResult | None) -> RowRun:
    if step is None:
        return RowRun("pending", error="not run: the evaluation stopped before this row")
    return RowRun(step.status, step.outputs, step.error, step.usage, step.duration_ms)


async def _shard_status(client: EngineClient, execution_id: str, number: int) -> RunStatus:
    handle = client.temporal.get_workflow_handle(f"{execution_id}/{shard_step(number)}")
    try:
        status: RunStatus = await handle.query("status", result_type=RunStatus)
    except Exception:  # never started: its rows are pending
        return RunStatus()
    return status


async def _counts(
    client: EngineClient, execution_id: str, shards: int, done: dict[int, RunStatus]
) -> tuple[int, int, Usage]:
    """Rows finished, rows failed, usage so far; shards that have ended are read once."""
    finished, failed, usage = 0, 0, Usage()
    for number in range(shards):
        status = done.get(number)
        if status is None:
            handle = client.temporal.get_workflow_handle(f"{execution_id}/{shard_step(number)}")
            try:
                described = await handle.describe()
            except Exception:
                break  # shards run in order: the later ones have not started
            status = await _shard_status(client, execution_id, number)
            if described.status != WorkflowExecutionStatus.RUNNING:
                done[number] = status
        rows = [s for i, s in status.steps.items() if i.startswith("row") and i.count("_") == 1]
        finished += sum(s.status != "skipped" for s in rows)
        failed += sum(s.status == "failed" for s in rows)
        usage += status.usage
    return finished, failed, usage


def _progress_line(counts: tuple[int, int, Usage], total: int, elapsed: float) -> str:
    finished, failed, usage = counts
    width = 24
    filled = int(width * finished / total) if total else width
    eta = f"{elapsed / finished * (total - finished):.0f}s" if finished else "?"
    tokens = usage.input_tokens + usage.output_tokens
    return (
        f"[{'#' * filled}{'.' * (width - filled)}] {finished}/{total} rows, {failed} failed, "
        f"{tokens:,} tokens, ${usage.cost_usd:.4f}, ETA {eta}"
    )
