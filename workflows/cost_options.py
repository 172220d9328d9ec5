"""What an `llm_call` (or `defaults`) may say to pay less for the same work: prompt caching
and the provider's service tier. Whether a model's provider offers them is the provider
table's (workflows/providers.py); a file that asks for what its model's provider lacks is
refused with the field's line."""

from __future__ import annotations

from typing import Literal

from workflows.providers import MOCK, PROVIDERS, provider_spec
from workflows.routing import route

CacheMode = Literal["system", "messages"]
"""system: the system prompt is the cached prefix; messages: the conversation up to its last
user message (the system prompt with it)."""

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
    "says it was served at."
)


def cost_option_problems(model: object, cache: object, tier: object) -> list[tuple[str, str]]:
    """(field, message) for each option the model's provider does not offer; a model that
    does not route is another check's to report."""
    if not isinstance(model, str):
        return []
    try:
        provider = route(model).provider
    except ValueError:
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
