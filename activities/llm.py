"""The ``llm_call`` activity: one model call, with provider errors sorted for Temporal's retries."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import replace

import anthropic
import openai
import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.endpoints import Endpoint, is_configured
from activities.heartbeat import heartbeating
from activities.pricing import DEFAULT_PRICES, Price, priced
from activities.providers import Provider
from activities.providers.anthropic_messages import AnthropicMessagesProvider
from activities.providers.mock import MockProvider
from activities.providers.openai_chat import OpenAIChatProvider
from activities.retry_after import retry_after
from activities.structured_replies import parse_reply
from activities.tracing import span
from workflows.contracts import LLM_CALL, LlmCallInput, LlmCallResult, Usage

SDK_TIMEOUT_SECONDS = 600.0
"""Generous: the step's `timeout` (Temporal's start-to-close) is the limit that counts."""
NON_RETRYABLE_STATUSES = {400, 401, 403, 404, 405, 413, 415, 422}


def build_providers(endpoints: Mapping[str, Endpoint]) -> dict[str, Provider]:
    """One SDK client per configured provider, built once and reused; SDK retries off."""
    providers: dict[str, Provider] = {"mock": MockProvider()}
    for name, endpoint in endpoints.items():
        if not is_configured(name, endpoint):
            continue
        if name == "anthropic":
            providers[name] = AnthropicMessagesProvider(
                anthropic.AsyncAnthropic(
                    api_key=endpoint.api_key,
                    base_url=endpoint.base_url,
                    max_retries=0,
                    timeout=SDK_TIMEOUT_SECONDS,
                )
            )
        else:
            # A local OpenAI-compatible server usually needs no key, but the SDK wants one.
            providers[name] = OpenAIChatProvider(
                openai.AsyncOpenAI(
                    api_key=endpoint.api_key or "not-needed",
                    base_url=endpoint.base_url,
                    max_retries=0,
                    timeout=SDK_TIMEOUT_SECONDS,
                )
            )
    return providers


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
    ) -> None:
        self._providers = dict(providers)
        self._max_reply = max_reply_bytes
        self._prices = prices

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
        provider = self._providers.get(call.provider)
        if provider is None:
            raise ApplicationError(
                _not_configured(call.provider),
                {"attempt": attempt},
                type="ProviderNotConfigured",
                non_retryable=True,
            )
        try:
            completion = await heartbeating(provider.complete(call))
        except (openai.OpenAIError, anthropic.AnthropicError) as exc:
            raise provider_failure(exc, call, attempt) from exc
        where = f"{call.provider}/{call.model}"
        if completion.refusal:
            raise ApplicationError(
                f"{where}: the model refused: {completion.refusal}",
                {"attempt": attempt},
                type="ProviderRefusal",
                non_retryable=True,
            )
        if not completion.text.strip():
            raise ApplicationError(
                f"{where}: empty completion (finish reason {completion.finish_reason})",
                {"attempt": attempt},
                type="ProviderEmptyReply",
            )
        text = completion.text
        if len(text.encode()) > self._max_reply:
            cut = text.encode()[: self._max_reply].decode(errors="ignore")
            text = f"{cut}\n[truncated: reply over {self._max_reply} bytes]"
            completion = replace(completion, text=text, truncated=True)
        parsed, invalid = None, None
        if call.response_schema is not None:
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
            usage=priced(completion.usage, call.provider, call.model, self._prices),
            attempt=attempt,
            finish_reason=completion.finish_reason,
            parsed=parsed,
            invalid=invalid,
        )


def record_call(call: LlmCallInput, outcome: str, seconds: float, usage: Usage | None) -> None:
    """The worker's metrics (exported on METRICS_PORT): calls, latency, tokens, cost."""
    meter = activity.metric_meter()
    labels = {"provider": call.provider, "model": call.model}
    meter.create_counter("llm_calls", "LLM calls by outcome").add(1, {**labels, "outcome": outcome})
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


def provider_failure(exc: Exception, call: LlmCallInput, attempt: int) -> ApplicationError:
    """Sort a provider SDK error into retryable or not, keeping the provider's own words."""
    where = f"{call.provider}/{call.model}"
    details = {"attempt": attempt}
    if isinstance(exc, openai.APITimeoutError | anthropic.APITimeoutError):
        return ApplicationError(f"{where}: request timed out", details, type="ProviderTimeout")
    if isinstance(exc, openai.APIConnectionError | anthropic.APIConnectionError):
        return ApplicationError(
            f"{where}: cannot connect: {exc.__cause__ or exc}", details, type="ProviderUnreachable"
        )
    if isinstance(exc, openai.APIStatusError | anthropic.APIStatusError):
        status = exc.status_code
        message = f"{where}: HTTP {status}: {_provider_message(exc)}"
        if status in NON_RETRYABLE_STATUSES:
            return ApplicationError(
                message, details, type=f"ProviderHTTP{status}", non_retryable=True
            )
        return ApplicationError(
            message,
            details,
            type=f"ProviderHTTP{status}",
            next_retry_delay=retry_after(exc.response.headers),
        )
    return ApplicationError(f"{where}: {exc}", details, type="ProviderError", non_retryable=True)


def _provider_message(exc: openai.APIStatusError | anthropic.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return error["message"]
    return exc.message


def _not_configured(provider: str) -> str:
    if provider == "openai":
        return (
            "provider openai is not configured on the worker: set OPENAI_API_KEY (or "
            "OPENAI_BASE_URL for a compatible server), or run with --offline"
        )
    if provider == "anthropic":
        return (
            "provider anthropic is not configured on the worker: set ANTHROPIC_API_KEY, "
            "or run with --offline"
        )
    return (
        f"provider {provider} is not configured on the worker: set {provider.upper()}_BASE_URL "
        "to its OpenAI-compatible endpoint, or run with --offline"
    )
