"""The batched `for_each`'s activities: submit one provider batch for the items' calls,
poll it, read its results, cancel it. Each is short; the run waits between polls on its
own timers (workflows/batch_run.py)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import anthropic
import openai
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.llm import provider_failure, record_call, reply_of
from activities.pricing import DEFAULT_PRICES, Price
from activities.providers.batches import Batcher
from workflows.batch_contracts import (
    LLM_BATCH_CANCEL,
    LLM_BATCH_POLL,
    LLM_BATCH_RESULTS,
    LLM_BATCH_SUBMIT,
    BatchItem,
    BatchRef,
    BatchResults,
    BatchResultsInput,
    BatchState,
    BatchSubmit,
    with_system,
)
from workflows.contracts import LlmCallInput
from workflows.errors import FailureType

BATCH_TIER = "batch"
"""Batched calls are priced at it (activities/pricing.py TIER_FACTORS: half price)."""


class BatchActivities:
    def __init__(
        self, batchers: Mapping[str, Batcher], prices: Mapping[str, Price] = DEFAULT_PRICES
    ) -> None:
        self._batchers = dict(batchers)
        self._prices = prices

    def _batcher(self, provider: str) -> Batcher:
        batcher = self._batchers.get(provider)
        if batcher is None:
            raise ApplicationError(
                f"provider {provider} is not configured on the worker, or has no batch API",
                type=FailureType.PROVIDER_NOT_CONFIGURED,
                non_retryable=True,
            )
        return batcher

    @activity.defn(name=LLM_BATCH_SUBMIT)
    async def submit(self, batch: BatchSubmit) -> BatchRef:
        """One batch for every call; a retry finds the batch an earlier attempt submitted."""
        with _sorted_errors(_call_of(batch.step_id, batch.provider, batch.model)):
            batch_id = await self._batcher(batch.provider).submit(
                with_system(batch), batch.idempotency_key
            )
        activity.logger.info("submitted batch %s of %d calls", batch_id, len(batch.calls))
        return BatchRef(
            step_id=batch.step_id, provider=batch.provider, model=batch.model, batch_id=batch_id
        )

    @activity.defn(name=LLM_BATCH_POLL)
    async def poll(self, ref: BatchRef) -> BatchState:
        with _sorted_errors(_call_of(ref.step_id, ref.provider, ref.model)):
            return await self._batcher(ref.provider).poll(ref.batch_id)

    @activity.defn(name=LLM_BATCH_CANCEL)
    async def cancel(self, ref: BatchRef) -> None:
        with _sorted_errors(_call_of(ref.step_id, ref.provider, ref.model)):
            await self._batcher(ref.provider).cancel(ref.batch_id)

    @activity.defn(name=LLM_BATCH_RESULTS)
    async def results(self, request: BatchResultsInput) -> BatchResults:
        """Each item's reply, read and priced as a realtime reply is (at the batch price);
        an item the provider failed, or whose reply a realtime call would refuse, carries
        why, and goes through the normal path."""
        ref = request.batch
        with _sorted_errors(_call_of(ref.step_id, ref.provider, ref.model)):
            answers = await self._batcher(ref.provider).results(ref.batch_id)
        call = _call_of(ref.step_id, ref.provider, ref.model)
        call.response_schema = request.response_schema
        items: dict[int, BatchItem] = {}
        for index in request.items:
            answer = answers.get(index, "the batch did not answer it")
            if isinstance(answer, str):
                items[index] = BatchItem(error=answer)
                continue
            try:
                reply = reply_of(call, answer, 1, self._prices, tier=BATCH_TIER)
            except ApplicationError as exc:
                items[index] = BatchItem(error=exc.message)
                continue
            items[index] = BatchItem(result=reply)
            record_call(call, "batched", None, reply.usage)
        return BatchResults(items=items)


def _call_of(step_id: str, provider: str, model: str) -> LlmCallInput:
    """Enough of a call to name its step and model in errors, and to read and price a reply."""
    return LlmCallInput(step_id=step_id, provider=provider, model=model, prompt="")


@contextmanager
def _sorted_errors(call: LlmCallInput) -> Iterator[None]:
    """Provider SDK errors sorted as a realtime call's are (activities/llm.py)."""
    try:
        yield
    except (openai.OpenAIError, anthropic.AnthropicError) as exc:
        raise provider_failure(exc, call, activity.info().attempt) from exc
