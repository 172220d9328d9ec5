"""A batched `for_each` (`batch:` on an llm_call): every item's first call goes to the
provider's batch API as one submission, and the run waits for it on its own timers, polling
with short activities, so a batch that takes hours holds no worker. The submission is keyed
by the run chain (workflows/activity_options.py `effect_key`) and its id is in history: a
worker killed or a server restarted mid-wait submits nothing twice. Each answered item then
goes on as any item does (its outputs, checks and re-asks); items the batch failed, expired
or did not answer by the deadline take the normal path, with the reason in `status`.

Budgets reserve the whole batch's worst case at the batch price before it is submitted, and
settle at what it cost."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from workflows.activity_options import effect_key, failure_reason
    from workflows.batch_contracts import (
        LLM_BATCH_CANCEL,
        LLM_BATCH_POLL,
        LLM_BATCH_RESULTS,
        LLM_BATCH_SUBMIT,
        BatchRef,
        BatchResults,
        BatchResultsInput,
        BatchState,
        BatchSubmit,
        shared_system,
    )
    from workflows.budget import DEFAULT_MAX_TOKENS
    from workflows.contracts import LlmCallInput, LlmCallResult, Usage
    from workflows.cost_options import batch_deadline
    from workflows.ledger import Spend
    from workflows.providers import MOCK, provider_spec
    from workflows.routing import route
    from workflows.step_results import StepFailed
    from workflows.step_types.llm_call import LlmCallStep
    from workflows.step_types.llm_call_run import request_of

if TYPE_CHECKING:
    from workflows.steps import StepRunner

BATCH_PATCH = "llm-batch"
"""Batched for_each steps: runs from before it never had one (the field was refused)."""
POLL_FIRST = timedelta(seconds=1)
POLL_MOST = timedelta(minutes=5)
"""Polls start a second apart and double up to this: a day-long batch costs ~300 polls."""
SUBMIT_TIMEOUT = timedelta(minutes=10)
"""Uploading a file of thousands of requests."""
POLL_TIMEOUT = timedelta(seconds=30)
RESULTS_TIMEOUT = timedelta(minutes=10)
BATCH_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(minutes=1),
    maximum_attempts=10,
)
"""The provider's API may be briefly unreachable: a poll or a submission is retried."""
BATCH_TIER = "batch"
"""How a batch is reserved (the price table's batch factor)."""

Tell = Callable[[str], None]
"""Told how the batch is doing, for the run's `status`."""


async def batched_replies(
    step: LlmCallStep, runner: StepRunner, contexts: dict[int, dict[str, Any]], tell: Tell
) -> dict[str, LlmCallResult]:
    """By `step id/index`: the batch's reply to each item's first call. Empty when the step's
    model cannot batch here (offline, a test's script): every item takes the normal path."""
    deadline = batch_deadline(step.batch)
    target = route(step.model or runner.defaults.model or "")
    if (
        deadline is None
        or runner.script is not None
        or target.provider == MOCK
        or target.provider in runner.mock_providers
        or not provider_spec(target.provider).batch
    ):
        return {}
    calls: dict[int, LlmCallInput] = {}
    for index, context in contexts.items():
        try:
            call = request_of(step, runner, context)
        except StepFailed:
            continue  # the item fails the same way on the normal path, which says so
        update = {"provider": target.provider, "model": target.model, "service_tier": None}
        calls[index] = call.model_copy(update=update)
    if not calls:
        return {}
    where = f"{target.provider} batch of step '{step.id}'"
    ledgers = runner.budgets.of_step(step.id)
    hold = None
    if ledgers:
        need = Spend()
        for call in calls.values():
            call.max_tokens = call.max_tokens or DEFAULT_MAX_TOKENS
            need += runner.budgets.worst_case(call.model_copy(update={"service_tier": BATCH_TIER}))
        hold = await runner.budgets.reserve(ledgers, need, f"the {where}")
    key, _ = effect_key(f"{step.id}/batch")
    system, compact = shared_system(calls)
    submit = BatchSubmit(
        step_id=step.id,
        provider=target.provider,
        model=target.model,
        calls=compact,
        system=system,
        idempotency_key=key,
    )
    schema = next(iter(calls.values())).response_schema
    ref = None
    try:
        ref = await _activity(LLM_BATCH_SUBMIT, submit, BatchRef, SUBMIT_TIMEOUT, step.id)
        tell(f"{where}: {ref.batch_id} submitted, {len(calls)} items")
        await _wait(ref, workflow.now() + deadline, tell, where)
        results = await _activity(
            LLM_BATCH_RESULTS,
            BatchResultsInput(batch=ref, items=sorted(calls), response_schema=schema),
            BatchResults,
            RESULTS_TIMEOUT,
            step.id,
        )
    except ActivityError as exc:
        if hold is not None:
            runner.budgets.settle(hold, Spend())
        what = "not submitted" if ref is None else f"{ref.batch_id} not read"
        tell(f"{where}: {what} ({failure_reason(exc)}): every item runs realtime")
        return {}
    answered = {i: item.result for i, item in results.items.items() if item.result is not None}
    if hold is not None:
        usage = sum((reply.usage for reply in answered.values()), Usage())
        runner.budgets.settle(hold, Spend.of(usage))
    failed = {i: item.error for i, item in results.items.items() if item.result is None}
    failed |= {i: "the batch did not answer it" for i in calls if i not in results.items}
    summary = f"{where}: {ref.batch_id} answered {len(answered)} of {len(calls)} items"
    if failed:
        first = min(failed)
        summary += f"; {len(failed)} run realtime (item {first}: {failed[first]})"
    tell(summary)
    return {f"{step.id}/{index}": reply for index, reply in answered.items()}


async def _wait(ref: BatchRef, deadline: Any, tell: Tell, where: str) -> None:
    """Poll on timers until the batch ends; past the deadline, cancel it and wait for the
    cancellation (whatever it answered by then is kept)."""
    interval = POLL_FIRST
    cancelled = False
    while True:
        now = workflow.now()
        if now >= deadline and not cancelled:
            await _activity(LLM_BATCH_CANCEL, ref, None, POLL_TIMEOUT, ref.step_id)
            tell(f"{where}: {ref.batch_id} past its deadline: cancelled")
            cancelled, interval = True, POLL_FIRST
        wait = interval if cancelled else min(interval, max(deadline - now, timedelta(0)))
        await workflow.sleep(max(wait, timedelta(seconds=1)))
        state = await _activity(LLM_BATCH_POLL, ref, BatchState, POLL_TIMEOUT, ref.step_id)
        if state.ended:
            return
        tell(f"{where}: {ref.batch_id} {state.status}, {state.done} of {state.total} done")
        interval = min(interval * 2, POLL_MOST)


async def _activity(
    name: str, arg: Any, result_type: type | None, timeout: timedelta, step_id: str
) -> Any:
    return await workflow.execute_activity(
        name,
        arg,
        result_type=result_type,
        start_to_close_timeout=timeout,
        retry_policy=BATCH_RETRY,
        summary=f"{step_id}: {name.removeprefix('llm_batch_')} batch",
    )
