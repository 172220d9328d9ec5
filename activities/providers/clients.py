"""One provider client per configured provider, built as the provider table says
(workflows/providers.py): which wire format it speaks, what each model family is sent."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import anthropic
import openai

from activities.endpoints import Endpoint, is_configured
from activities.providers import Provider
from activities.providers.anthropic_messages import AnthropicMessagesProvider
from activities.providers.batches import AnthropicBatcher, Batcher, OpenAIBatcher
from activities.providers.mock import MockProvider
from activities.providers.openai_chat import OpenAIChatProvider
from workflows.providers import MOCK, ProviderSpec, Wire, provider_spec

SDK_TIMEOUT_SECONDS = 600.0
"""Generous: the step's `timeout` (Temporal's start-to-close) is the limit that counts."""


def _openai_chat(spec: ProviderSpec, endpoint: Endpoint) -> Provider:
    # A local OpenAI-compatible server usually needs no key, but the SDK wants one.
    client = openai.AsyncOpenAI(
        api_key=endpoint.api_key or "not-needed",
        base_url=endpoint.base_url,
        max_retries=0,
        timeout=SDK_TIMEOUT_SECONDS,
    )
    return OpenAIChatProvider(client, spec)


def _anthropic_messages(spec: ProviderSpec, endpoint: Endpoint) -> Provider:
    client = anthropic.AsyncAnthropic(
        api_key=endpoint.api_key,
        base_url=endpoint.base_url,
        max_retries=0,
        timeout=SDK_TIMEOUT_SECONDS,
    )
    return AnthropicMessagesProvider(client, spec)


def _mock(spec: ProviderSpec, endpoint: Endpoint) -> Provider:
    return MockProvider()


FACTORIES: dict[Wire, Callable[[ProviderSpec, Endpoint], Provider]] = {
    "openai_chat": _openai_chat,
    "anthropic_messages": _anthropic_messages,
    "mock": _mock,
}
"""How each wire format's client is built: one entry per `Wire` of the table."""


def build_providers(endpoints: Mapping[str, Endpoint]) -> dict[str, Provider]:
    """One SDK client per configured provider, built once and reused; SDK retries off.
    The offline mock is always there."""
    providers: dict[str, Provider] = {MOCK: MockProvider()}
    for name, endpoint in endpoints.items():
        spec = provider_spec(name)
        if is_configured(name, endpoint) and spec.wire != "mock":
            providers[name] = FACTORIES[spec.wire](spec, endpoint)
    return providers


def build_batchers(providers: Mapping[str, Provider]) -> dict[str, Batcher]:
    """The batch API of each configured provider the table says has one, on the provider's
    own SDK client."""
    batchers: dict[str, Batcher] = {}
    for name, provider in providers.items():
        if not provider_spec(name).batch:
            continue
        if isinstance(provider, OpenAIChatProvider):
            batchers[name] = OpenAIBatcher(provider.client, provider)
        elif isinstance(provider, AnthropicMessagesProvider):
            batchers[name] = AnthropicBatcher(provider.client, provider)
    return batchers
