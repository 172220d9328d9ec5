"""The ``llm_call`` activity: one model call, with provider errors sorted for Temporal's retries."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import anthropic
import openai
import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.endpoints import Endpoint as Endpoint  # the worker's import path
from activities.heartbeat import heartbeating
from activities.images import read_images
from activities.pricing import DEFAULT_PRICES, Price, priced
from activities.providers import Completion, Provider
from activities.providers.clients import build_providers as build_providers
from activities.rate_limits import Gate, Pacer
from activities.retry_after import retry_after
from activities.scripted import ScriptedProvider
from activities.structured_replies import parse_reply
from activities.tracing import span
from workflows.contracts import LLM_CALL, LlmCallInput, LlmCallResult, Usage
from workflows.errors import FailureType
from workflows.providers import provider_spec

STREAM_EVERY_SECONDS = 0.2
STREAM_TAIL = 16_000
"""A streamed reply's heartbeat carries its last this many characters (and their offset)."""
NON_RETRYABLE_STATUSES = {400, 401, 403, 404, 405, 413, 415, 422}


MAX_REPLY_BYTES = 8_000_000
"""Replies are cut here (with a marker): above what providers return today. A reply over
EXTERNAL_STORAGE_THRESHOLD leaves history for external storage (activities/payload_store.py);
with EXTERNAL_STORAGE=off, one over Temporal's 2 MiB payload limit fails its step."""


class LlmActivities:
    def __init__(
        self,
        providers: Mapping[str, Provider],
        max_reply_bytes: int = MAX_REPLY_BYTES,
        prices: Mapping[str, Price] = DEFAULT_PRICES,
        pacer: Pacer | None = None,
        input_dir: Path = Path("input"),
    ) -> None:
        self._input_dir = input_dir
        self._providers = dict(providers)
        self._max_reply = max_reply_bytes
        self._prices = prices
        self._pacer = pacer or Pacer()

    @activity.defn(name=LLM_CALL)
    async def llm_call(self, call: LlmCallInput) -> LlmCallResult:
        """One call, logged with the run's ids and counted in the worker's metrics."""
        info = activity.info()
        log = structlog.get_logger("llm").bind(
            workflow_id=info.workflow_id,
            run_id=info.workflow_run_id,
            step_id=call.step_id,
            attempt=info.attempt,
            provider=call.provider,
            model=call.model,
        )
        started = time.monotonic()
        try:
            with span(
                f"llm {call.provider}/{call.model}",
                step_id=call.step_id,
                workflow_id=info.workflow_id,
                attempt=info.attempt,
            ):
                result = await self._call(call, info.attempt)
        except ApplicationError as exc:
            record_call(call, "error", time.monotonic() - started, None)
            log.warning("llm call failed", error=exc.message, retryable=not exc.non_retryable)
            raise
        elapsed = time.monotonic() - started
        record_call(call, "invalid" if result.invalid else "ok", elapsed, result.usage)
        log.info(
            "llm call",
            latency_ms=int(elapsed * 1000),
            input_tokens=result.usage.input_tokens,
            output_tokens=result.usage.output_tokens,
            cost_usd=result.usage.cost_usd,
            invalid=result.invalid,
        )
        return result

    async def _call(self, call: LlmCallInput, attempt: int) -> LlmCallResult:
        scripted = call.scripted is not None  # a test's call: its script answers
        provider = ScriptedProvider() if scripted else self._providers.get(call.provider)
        if provider is None:
            raise ApplicationError(
                _not_configured(call.provider),
                {"attempt": attempt},
                type=FailureType.PROVIDER_NOT_CONFIGURED,
                non_retryable=True,
            )
        where = f"{call.provider}/{call.model}"
        if call.images:
            call = call.model_copy(update={"images": read_images(call.images, self._input_dir)})
        gate = None if scripted else self._pacer.gate(call.provider, call.model)
        if gate is not None:
            await self._wait_for_capacity(gate, call, where)
        try:
            completion = await heartbeating(provider.complete(call, Streamer(call.step_id).add))
        except (openai.OpenAIError, anthropic.AnthropicError) as exc:
            if gate is not None and isinstance(
                exc, openai.APIStatusError | anthropic.APIStatusError
            ):
                self._refused(gate, exc, call)
            raise provider_failure(exc, call, attempt) from exc
        finally:
            if gate is not None:
                gate.ended()
        if gate is not None:
            gate.observe(completion.headers)
        return reply_of(call, completion, attempt, self._prices, self._max_reply)

    async def _wait_for_capacity(self, gate: Gate, call: LlmCallInput, where: str) -> None:
        """Wait at the model's gate; the wait shows in the activity's heartbeat details
        (the client API's `status`, the Temporal UI) and in the worker's metrics."""
        if gate.try_acquire(estimated_tokens(call)):
            return
        waited = await heartbeating(
            gate.acquire(
                estimated_tokens(call),
                on_wait=lambda: activity.heartbeat(f"waiting for {where} capacity"),
            )
        )
        if waited > 0.001:
            activity.heartbeat()  # the wait is over: clear "waiting for ..." from the details
            activity.metric_meter().create_histogram_float(
                "llm_capacity_wait_seconds", "time calls waited for provider capacity", "s"
            ).record(waited, {"provider": call.provider, "model": call.model})

    def _refused(
        self,
        gate: Gate,
        exc: openai.APIStatusError | anthropic.APIStatusError,
        call: LlmCallInput,
    ) -> None:
        headers = exc.response.headers
        gate.observe(headers, answered=False)
        if exc.status_code != 429:
            return
        delay = retry_after(headers)
        gate.refused(delay.total_seconds() if delay is not None else None)
        activity.metric_meter().create_counter("llm_rate_limited", "429s from providers").add(
            1, {"provider": call.provider, "model": call.model}
        )


class Streamer:
    """A streamed reply's pieces, passed on as the activity's heartbeat details: the client
    API's `status` (and so `starter.py run` and the REST API's events) reads them while the
    call runs, and they never enter the run's history, which keeps the whole reply once."""

    def __init__(self, step_id: str) -> None:
        self.step_id = step_id
        self.text = ""
        self.sent_at = 0.0

    def add(self, piece: str) -> None:
        self.text += piece
        if time.monotonic() - self.sent_at >= STREAM_EVERY_SECONDS:
            self.sent_at = time.monotonic()
            offset = max(0, len(self.text) - STREAM_TAIL)
            activity.heartbeat(
                {"stream": {"step": self.step_id, "offset": offset, "text": self.text[offset:]}}
            )


def reply_of(
    call: LlmCallInput,
    completion: Completion,
    attempt: int,
    prices: Mapping[str, Price],
    max_reply: int = MAX_REPLY_BYTES,
    tier: str | None = None,
) -> LlmCallResult:
    """A provider's completion as the step reads it: refusals and empty replies raised,
    a reply over `max_reply` cut, structured replies parsed, usage priced (at `tier`, else
    at the tier the reply was served at). A realtime call's and a batch's replies alike."""
    where = f"{call.provider}/{call.model}"
    if completion.refusal:
        raise ApplicationError(
            f"{where}: the model refused: {completion.refusal}",
            {"attempt": attempt},
            type=FailureType.PROVIDER_REFUSAL,
            non_retryable=True,
        )
    if not completion.text.strip() and not completion.tool_calls:
        raise ApplicationError(
            f"{where}: empty completion (finish reason {completion.finish_reason})",
            {"attempt": attempt},
            type=FailureType.PROVIDER_EMPTY_REPLY,
        )
    text = completion.text
    if len(text.encode()) > max_reply:
        cut = text.encode()[:max_reply].decode(errors="ignore")
        text = f"{cut}\n[truncated: reply over {max_reply} bytes]"
        completion = replace(completion, text=text, truncated=True)
    parsed, invalid = None, None
    if call.response_schema is not None and not completion.tool_calls:
        parsed, invalid = parse_reply(completion.text, call.response_schema)
        if invalid and completion.truncated:
            invalid = (
                "the reply was cut off at max_tokens before the JSON was complete; "
                "answer more briefly"
            )
    return LlmCallResult(
        text=completion.text,
        provider=call.provider,
        model=call.model,
        usage=priced(
            completion.usage,
            call.provider,
            call.model,
            prices,
            tier or completion.service_tier,
        ),
        attempt=attempt,
        finish_reason=completion.finish_reason,
        parsed=parsed,
        invalid=invalid,
        tool_calls=completion.tool_calls,
    )


def estimated_tokens(call: LlmCallInput) -> int:
    """What a provider counts against its tokens-per-minute limit before the call: about
    four characters per prompt token, plus the max_tokens it may answer with."""
    characters = len(call.prompt) + len(call.system or "") + 4000 * len(call.images)
    characters += sum(len(message.content) for message in call.messages)
    characters += sum(len(message.content) for message in call.reasks)
    characters += sum(len(str(tool.parameters)) + len(tool.description) for tool in call.tools)
    characters += sum(len(r.content) + 40 for turn in call.turns for r in turn.results)
    return characters // 4 + 1 + (call.max_tokens or 0)


def record_call(
    call: LlmCallInput, outcome: str, seconds: float | None, usage: Usage | None
) -> None:
    """The worker's metrics (exported on METRICS_PORT): calls, latency, tokens, cost (a
    batch's calls have no latency of their own: None)."""
    meter = activity.metric_meter()
    labels = {"provider": call.provider, "model": call.model}
    meter.create_counter("llm_calls", "LLM calls by outcome").add(1, {**labels, "outcome": outcome})
    if seconds is not None:
        meter.create_histogram_float("llm_latency_seconds", "LLM call latency", "s").record(
            seconds, labels
        )
    if usage is not None:
        meter.create_counter("llm_input_tokens", "tokens sent").add(usage.input_tokens, labels)
        meter.create_counter("llm_output_tokens", "tokens received").add(
            usage.output_tokens, labels
        )
        meter.create_counter("llm_cost_microdollars", "estimated spend").add(
            round(usage.cost_usd * 1_000_000), labels
        )
        meter.create_counter("llm_cache_read_tokens", "input tokens read from cache").add(
            usage.cache_read_tokens, labels
        )
        meter.create_counter("llm_saved_microdollars", "saved by caching and tiers").add(
            max(0, round(usage.saved_usd * 1_000_000)), labels
        )


def provider_failure(exc: Exception, call: LlmCallInput, attempt: int) -> ApplicationError:
    """Sort a provider SDK error into retryable or not, keeping the provider's own words."""
    where = f"{call.provider}/{call.model}"
    details = {"attempt": attempt}
    if isinstance(exc, openai.APITimeoutError | anthropic.APITimeoutError):
        return ApplicationError(
            f"{where}: request timed out", details, type=FailureType.PROVIDER_TIMEOUT
        )
    if isinstance(exc, openai.APIConnectionError | anthropic.APIConnectionError):
        return ApplicationError(
            f"{where}: cannot connect: {exc.__cause__ or exc}",
            details,
            type=FailureType.PROVIDER_UNREACHABLE,
        )
    if isinstance(exc, openai.APIStatusError | anthropic.APIStatusError):
        status = exc.status_code
        message = f"{where}: HTTP {status}: {_provider_message(exc)}"
        if status in NON_RETRYABLE_STATUSES:
            return ApplicationError(
                message, details, type=FailureType.provider_http(status), non_retryable=True
            )
        return ApplicationError(
            message,
            details,
            type=FailureType.provider_http(status),
            next_retry_delay=retry_after(exc.response.headers),
        )
    return ApplicationError(
        f"{where}: {exc}", details, type=FailureType.PROVIDER_ERROR, non_retryable=True
    )


def _provider_message(exc: openai.APIStatusError | anthropic.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return error["message"]
    return exc.message


def _not_configured(provider: str) -> str:
    return (
        f"provider {provider} is not configured on the worker: set "
        f"{provider_spec(provider).setup_hint()}, or run with --offline"
    )
