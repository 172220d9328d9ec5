"""Running test cases: each case is a real run of its definition on the Temporal server,
following its script (workflows/scripts.py), its signals sent, then its expectations compared
with what the run did. Cases run in parallel; each run's script is its own input, so no case
ever sees another's replies."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from temporalio.client import WorkflowHandle
from temporalio.exceptions import ApplicationError

from engine.client import EngineClient
from engine.run_history import read_runs
from engine.temporal_errors import Where, temporal_errors
from engine.testing.files import LoadedCase, LoadedTests
from workflows.contracts import LlmCallInput, RunResult, RunStatus, StepResult, Usage
from workflows.definition import WaitForSignalStep
from workflows.errors import FailureType, RunFailed, WorkflowError

POLL_SECONDS = 0.5
STUCK_POLLS = 2
"""A run seen waiting for a signal this many polls in a row, with nothing left to send, is
stuck: the case fails saying what it waits for."""
MISSING = "no scripted answer"
"""What a call the script did not cover fails with (activities/scripted.py)."""


@dataclass
class Mismatch:
    field: str
    expected: Any
    actual: Any
    step: str | None = None


@dataclass
class CaseResult:
    file: str
    name: str
    seconds: float
    mismatches: list[Mismatch] = field(default_factory=list)
    problem: str | None = None
    """Why the case could not be judged (a stuck run, a refused signal, a missing reply)."""
    execution_id: str | None = None

    @property
    def passed(self) -> bool:
        return not self.mismatches and self.problem is None


@dataclass
class Outcome:
    """What a run did, as the expectations read it."""

    status: str
    outputs: dict[str, Any]
    steps: dict[str, StepResult]
    usage: Usage
    error: str | None
    calls: dict[str, int]
    prompts: dict[str, list[str]]
    missing: list[str]


def selected(tests: LoadedTests, pattern: str | None) -> list[LoadedCase]:
    """The cases whose `FILE::NAME` contains `pattern` (every case without one)."""
    return [c for c in tests.cases if not pattern or pattern in f"{tests.path}::{c.case.name}"]


async def run_all(
    client: EngineClient,
    files: list[LoadedTests],
    pattern: str | None = None,
    concurrency: int = 16,
    on_result: Callable[[CaseResult], None] | None = None,
) -> list[CaseResult]:
    """Every selected case, at most `concurrency` at once, in file order."""
    limit = asyncio.Semaphore(concurrency)

    async def one(tests: LoadedTests, case: LoadedCase) -> CaseResult:
        async with limit:
            result = await run_case(client, tests, case)
        if on_result is not None:
            on_result(result)
        return result

    jobs = [one(tests, case) for tests in files for case in selected(tests, pattern)]
    return list(await asyncio.gather(*jobs))


async def run_case(client: EngineClient, tests: LoadedTests, loaded: LoadedCase) -> CaseResult:
    case = loaded.case
    began = time.monotonic()
    result = CaseResult(str(tests.path), case.name, 0.0)
    slug = re.sub(r"[^A-Za-z0-9]+", "-", case.name).strip("-")[:40]
    execution_id = f"test-{slug}-{uuid.uuid4().hex[:8]}"
    try:
        await client.start(
            tests.loaded, case.variables, execution_id=execution_id, script=loaded.script
        )
        result.execution_id = execution_id
        handle = client.temporal.get_workflow_handle(execution_id, result_type=RunResult)
        for name, payload in loaded.signals:
            await client.signal(execution_id, name, payload)
        waits = any(
            isinstance(s, WaitForSignalStep) for s in tests.loaded.definition.workflow.steps
        )
        outcome = await asyncio.wait_for(_outcome(client, handle, waits), case.timeout)
    except WorkflowError as exc:
        result.problem = str(exc)
    except TimeoutError:
        result.problem = f"the run did not end within {case.timeout:g} s (the case's timeout)"
        await _terminate(client, execution_id, result.problem)
    except _Stuck as exc:
        result.problem = str(exc)
        await _terminate(client, execution_id, result.problem)
    else:
        if outcome.missing:
            result.problem = outcome.missing[0]
        result.mismatches = compare(tests, loaded, outcome)
    result.seconds = time.monotonic() - began
    return result


class _Stuck(Exception):
    pass


async def _outcome(
    client: EngineClient, handle: WorkflowHandle[Any, RunResult], waits: bool
) -> Outcome:
    ended = asyncio.ensure_future(handle.result())
    try:
        return await _watched(client, handle, ended, waits)
    finally:
        ended.cancel()  # a case given up on: its run is terminated, nobody reads the result


async def _watched(
    client: EngineClient,
    handle: WorkflowHandle[Any, RunResult],
    ended: asyncio.Future[RunResult],
    waits: bool,
) -> Outcome:
    stuck = 0
    while waits and not ended.done():
        await asyncio.wait([ended], timeout=POLL_SECONDS)
        if ended.done():
            break
        status = await handle.query("status", result_type=RunStatus)
        waiting = status.model_dump().get("waiting_signals") or {}
        stuck = stuck + 1 if waiting else 0
        if stuck >= STUCK_POLLS:
            what = ", ".join(f"signal {name!r} (step {step})" for step, name in waiting.items())
            raise _Stuck(f"the run still waits for {what} and the case sends no more")
    error = None
    settings = client.settings
    try:
        with temporal_errors(Where(settings.address, settings.namespace, handle.id)):
            run: RunResult | None = await ended
        state = "completed"
    except RunFailed as exc:
        run, error = None, exc.reason
        state = "cancelled" if exc.state == "cancelled" else "failed"
    status = None if run is not None else await handle.query("status", result_type=RunStatus)
    calls, prompts, missing = await _calls(client, handle.id)
    steps = dict(run.steps if run is not None else status.steps if status else {})
    missing += [s.error for s in steps.values() if s.error and MISSING in s.error]
    if error and MISSING in error:
        missing.append(error)
    return Outcome(
        status=state,
        outputs=run.outputs if run is not None else status.outputs if status else {},
        steps=steps,
        usage=run.usage if run is not None else status.usage if status else Usage(),
        error=error,
        calls=calls,
        prompts=prompts,
        missing=missing,
    )


async def _calls(
    client: EngineClient, execution_id: str
) -> tuple[dict[str, int], dict[str, list[str]], list[str]]:
    """Model calls and their rendered prompts by step, and calls the script did not cover,
    read from the run's history and its child runs'."""
    calls: dict[str, int] = {}
    prompts: dict[str, list[str]] = {}
    missing: list[str] = []
    for run in await read_runs(client.temporal, execution_id):
        for call in run.calls:
            failure = call.failure
            if isinstance(failure, ApplicationError) and failure.type == FailureType.SCRIPT_MISSING:
                missing.append(failure.message)
            if not isinstance(call.request, LlmCallInput):
                continue
            sent = call.request
            calls[call.step_id] = calls.get(call.step_id, 0) + 1
            texts = [sent.system or "", sent.prompt, *(m.content for m in sent.messages)]
            for turn in sent.turns:  # what tools answered, and what a re-ask said
                texts += [turn.text, *(result.content for result in turn.results)]
            texts += [message.content for message in sent.reasks]
            prompts.setdefault(call.step_id, []).append("\n".join(texts))
    return calls, prompts, missing


async def _terminate(client: EngineClient, execution_id: str, reason: str) -> None:
    with contextlib.suppress(Exception):  # it ended meanwhile, or never started
        await client.temporal.get_workflow_handle(execution_id).terminate(reason=reason)


def compare(tests: LoadedTests, loaded: LoadedCase, outcome: Outcome) -> list[Mismatch]:
    """Every expectation the run did not meet, each naming its field and step."""
    expect = loaded.case.expect
    definition = tests.loaded.definition
    failed = next((i for i, s in outcome.steps.items() if s.status == "failed"), None)
    found: list[Mismatch] = []
    if outcome.status != expect.status:
        actual = outcome.status + (f" ({outcome.error})" if outcome.error else "")
        found.append(Mismatch("status", expect.status, actual, failed))
    producer = {n: s.id for s in definition.workflow.steps for n in s.output_names()}
    for name, wanted in expect.outputs.items():
        value = outcome.outputs.get(name)
        if not matches(wanted, value):
            found.append(Mismatch(f"outputs.{name}", wanted, value, producer.get(name)))
    for step_id, wanted in expect.steps.items():
        step = outcome.steps.get(step_id)
        actual = step.status if step else "not run"
        if actual != wanted:
            detail = f"{actual} ({step.error})" if step and step.error else actual
            found.append(Mismatch(f"steps.{step_id}", wanted, detail, step_id))
    for step_id, count in expect.calls.items():
        if outcome.calls.get(step_id, 0) != count:
            found.append(
                Mismatch(f"calls.{step_id}", count, outcome.calls.get(step_id, 0), step_id)
            )
    for step_id, texts in expect.prompts.items():
        sent = outcome.prompts.get(step_id, [])
        for text in [texts] if isinstance(texts, str) else texts:
            if not any(text in prompt for prompt in sent):
                actual = sent[-1] if sent else "(no call)"
                found.append(Mismatch(f"prompts.{step_id}", {"contains": text}, actual, step_id))
    if expect.error is not None and expect.error not in (outcome.error or ""):
        found.append(Mismatch("error", {"contains": expect.error}, outcome.error, failed))
    spent = {
        "max_cost_usd": outcome.usage.cost_usd,
        "max_tokens": float(outcome.usage.input_tokens + outcome.usage.output_tokens),
    }
    for limit, most in expect.budget.items():
        if spent[limit] > most:
            found.append(Mismatch(f"budget.{limit}", f"at most {most:g}", spent[limit]))
    return found


def matches(wanted: Any, actual: Any) -> bool:
    """An exact value, or `{contains: TEXT}` / `{matches: REGEX}` against the value's text."""
    if isinstance(wanted, dict) and len(wanted) == 1:
        [(how, what)] = wanted.items()
        text = actual if isinstance(actual, str) else json.dumps(actual, default=str)
        if how == "contains":
            return str(what) in text
        if how == "matches":
            return re.search(str(what), text) is not None
    return bool(wanted == actual)
