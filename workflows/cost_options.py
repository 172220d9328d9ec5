"""What an `llm_call` (or `defaults`) may say to pay less for the same work: prompt caching
and the provider's service tier. Whether a model's provider offers them is the provider
table's (workflows/providers.py); a file that asks for what its model's provider lacks is
refused with the field's line."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from pydantic import Field

from workflows.definition_parts import CheckedDuration, DefinitionModel
from workflows.durations import parse_duration
from workflows.providers import MOCK, PROVIDERS, provider_spec
from workflows.routing import route

CacheMode = Literal["system", "messages"]
"""system: the system prompt is the cached prefix; messages: the conversation up to its last
user message (the system prompt with it)."""

MAX_MARKED_MESSAGES = 3
"""Messages a step may mark `cache: true`: Anthropic takes 4 breakpoints, `cache` one more."""

CACHE_DESCRIPTION = (
    "Prompt caching: 'system' (the system prompt is a prefix reused by many calls) or "
    "'messages' (the conversation up to its last user message). Anthropic models get "
    "cache_control breakpoints there; OpenAI caches long prefixes by itself (the request is "
    "sent prefix first, with a prompt_cache_key). Tokens read from the cache are billed at "
    "the cache price (Anthropic: 10% of input; writes 125%); usage shows them."
)
SERVICE_TIER_DESCRIPTION = (
    "The provider's service tier: OpenAI's 'flex' (about half price, slower, may answer "
    "429 'resource unavailable': give the step a longer timeout and retries), 'priority', "
    "'default', 'auto'; Anthropic's 'auto' or 'standard_only'. Priced at the tier the reply "
    "says it was served at. Long form: {tier: flex, standard_after: '10m'} makes the call at "
    "the standard tier when the tier has not answered in that time."
)


BATCH_DESCRIPTION = (
    "With for_each: send every item's call to the provider's batch API as one batch "
    "(OpenAI's Batch API, Anthropic's Message Batches), at about half price, and wait for "
    "it durably (minutes to hours). Items the batch fails, or that are not answered by the "
    "deadline, go through the normal path. true, or {deadline: '6h'}. Default: false."
)
DEFAULT_BATCH_DEADLINE = timedelta(hours=24)
"""The providers' own completion window."""


class BatchSpec(DefinitionModel):
    """How a batched for_each waits for its batch."""

    deadline: CheckedDuration | None = Field(
        default=None,
        description="How long to wait for the batch before cancelling it and sending the "
        "items it has not answered through the normal path. Default: 24h.",
    )


class TierSpec(DefinitionModel):
    """A service tier, and when to give up on it for the standard one."""

    tier: str = Field(description="The tier to ask for first, e.g. flex.")
    standard_after: CheckedDuration | None = Field(
        default=None,
        description="If the call has no answer at this tier after this long (retries and "
        "429s 'resource unavailable' included), it is made once more at the standard tier. "
        "Default: never.",
    )


ServiceTier = str | TierSpec


def tier_name(value: object) -> str | None:
    """The tier a raw or parsed `service_tier` names (the long form's `tier`); None for no
    tier, or for a value of the wrong type (which the model's own check reports)."""
    if isinstance(value, TierSpec):
        return value.tier
    if isinstance(value, dict):
        value = value.get("tier")
    return value if isinstance(value, str) else None


def standard_after(value: ServiceTier | None) -> timedelta | None:
    if isinstance(value, TierSpec) and value.standard_after is not None:
        return parse_duration(value.standard_after)
    return None


def batch_deadline(batch: bool | BatchSpec | None) -> timedelta | None:
    """None: the step is not batched."""
    if not batch:
        return None
    if isinstance(batch, BatchSpec) and batch.deadline is not None:
        return parse_duration(batch.deadline)
    return DEFAULT_BATCH_DEADLINE


def batch_problems(model: object, step: dict[str, Any]) -> list[tuple[str, str]]:
    """What stops a step's `batch` from being sent as one: no for_each, tools (each turn
    waits on the last), or a provider without a batch API."""
    if not step.get("batch"):
        return []
    problems: list[tuple[str, str]] = []
    if step.get("for_each") is None:
        problems.append(("batch", "batch sends a for_each's items as one batch: add for_each"))
    if step.get("tools"):
        problems.append(
            ("batch", "a step with tools cannot be batched (each turn waits on the last)")
        )
    provider = _provider(model)
    if provider is not None and provider != MOCK and not provider_spec(provider).batch:
        batching = ", ".join(sorted(p.name for p in PROVIDERS if p.batch))
        problems.append(
            (
                "batch",
                f"model {model!r} is served by {provider}, which has no batch API: remove "
                f"'batch' or use a model of {batching}",
            )
        )
    return problems


def _provider(model: object) -> str | None:
    if not isinstance(model, str):
        return None
    try:
        return route(model).provider
    except ValueError:
        return None


def cost_option_problems(model: object, cache: object, tier: object) -> list[tuple[str, str]]:
    """(field, message) for each option the model's provider does not offer; a model that
    does not route is another check's to report."""
    provider = _provider(model)
    if provider is None:
        return []
    spec = provider_spec(provider)
    problems: list[tuple[str, str]] = []
    if cache is not None and spec.prompt_caching == "none" and provider != MOCK:
        problems.append(
            (
                "cache",
                f"model {model!r} is served by {provider}, which has no prompt caching the "
                f"engine knows: remove 'cache' or use a model of {', '.join(caching_providers())}",
            )
        )
    tier = tier_name(tier)
    if tier is not None and provider != MOCK and tier not in spec.service_tiers:
        offered = ", ".join(spec.service_tiers) or "none"
        problems.append(
            (
                "service_tier",
                f"{provider} does not offer service_tier {tier!r} (it offers: {offered})",
            )
        )
    return problems


def caching_providers() -> list[str]:
    return sorted(p.name for p in PROVIDERS if p.prompt_caching != "none")
