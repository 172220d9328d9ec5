"""Every fact about model providers, in one table: the name a model is routed to, where the
worker finds it (environment variables), what it accepts, how it is paced and, per model
family, what a call sends. Pure data: routing and validation read it inside workflows,
settings, pacing and the client factories (activities/providers/) outside them.

A name the table does not hold is an OpenAI-compatible server (vLLM, LM Studio, a proxy)
found through `<NAME>_BASE_URL`: `provider_spec` answers for it with `compatible(name)`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Wire = Literal["openai_chat", "anthropic_messages", "mock"]
"""Which client under activities/providers/ speaks to it."""
Needs = Literal["key", "key or base url", "base url", "nothing"]
"""What the worker's environment must hold before calls go to it. Either of a key and a base
URL will do for the last two; they differ in what `run` tells a user to set."""
StructuredOutput = Literal["json_schema", "forced tool", "sample"]
"""How structured outputs are asked for: OpenAI's `response_format` json_schema, a tool the
model must call, or the offline mock's simplest fitting JSON."""
Caching = Literal["automatic", "on request", "none"]
"""Prompt caching on the provider's side: it caches long prefixes itself, it caches only
what a request marks (the engine marks what a step's `cache` names), or none known."""
RateHeaderStyle = Literal["openai", "anthropic"]
"""Which rate-limit headers a provider sends with every reply (activities/rate_limits.py)."""
MaxTokensParam = Literal["max_tokens", "max_completion_tokens"]

PROVIDER_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")
"""What `name/model` may name: a table entry or an OpenAI-compatible server."""

MOCK = "mock"
"""The offline provider: no network, no key, no cost; runs' `mock_providers` send calls here."""

RATE_HEADER_PREFIXES: dict[RateHeaderStyle, str] = {
    "openai": "x-ratelimit-",
    "anthropic": "anthropic-ratelimit-",
}


@dataclass(frozen=True)
class ModelFamily:
    """What a call to a family of models sends of a step's settings."""

    label: str
    """Who they are, after the provider's name: 'reasoning models (o1, o3, gpt-5...)'."""
    pattern: str = ""
    """A regular expression a model name starts with; empty matches every model."""
    temperature: bool = True
    """False: the API refuses `temperature`, so a step's is not sent (validation warns)."""
    max_tokens_param: MaxTokensParam = "max_tokens"
    """The request field a step's `max_tokens` is sent as."""

    def matches(self, model: str) -> bool:
        return re.match(self.pattern, model) is not None


@dataclass(frozen=True)
class ProviderSpec:
    """One row of the table: everything the engine knows of a provider."""

    name: str
    """What a model name is routed to: `name/model`."""
    title: str
    """Who it is, for people: 'OpenAI', 'any OpenAI-compatible server'."""
    wire: Wire
    needs: Needs = "key or base url"
    key_env: str | None = None
    base_url_env: str | None = None
    default_base_url: str | None = None
    bare_names: str | None = None
    """A regular expression: bare model names (no `provider/`) that start so go here."""
    examples: tuple[str, ...] = ()
    """Model names as a definition writes them, for the docs."""
    families: tuple[ModelFamily, ...] = ()
    """First match wins; a model no family matches sends every setting as it is."""
    default_max_tokens: int | None = None
    """Sent when neither the step nor its defaults set `max_tokens`: its API requires one."""
    structured_output: StructuredOutput = "json_schema"
    streaming: bool = True
    images: bool = False
    """Whether the engine sends images to it in the provider's own wire format."""
    tools: bool = True
    prompt_caching: Caching = "none"
    batch: bool = False
    """The provider offers a batch API (the engine does not use one yet: DSL v1.2)."""
    service_tiers: tuple[str, ...] = ()
    """The `service_tier` values its API takes; a step may ask only for one of these."""
    rate_headers: RateHeaderStyle | None = None
    """How its replies tell the rate limit; None: calls to it are not paced."""

    def __post_init__(self) -> None:
        if self.wire == "anthropic_messages" and self.default_max_tokens is None:
            raise ValueError(f"provider {self.name}: the Messages API needs default_max_tokens")

    def family(self, model: str) -> ModelFamily:
        return next((f for f in self.families if f.matches(model)), ALL_MODELS)

    def configured(self, api_key: str | None, base_url: str | None) -> bool:
        """Whether a worker with this key and base URL can call it."""
        if self.needs == "nothing":
            return True
        if self.needs == "key":
            return bool(api_key)
        return bool(api_key or base_url)

    def setup_hint(self) -> str:
        """What to set in the worker's environment to call it."""
        if self.needs == "key":
            return f"{self.key_env}"
        if self.needs == "key or base url":
            return f"{self.key_env} (or {self.base_url_env} for a compatible server)"
        if self.needs == "base url":
            return f"{self.base_url_env} to its OpenAI-compatible endpoint"
        return "nothing"


ALL_MODELS = ModelFamily("models")

OPENAI_REASONING = ModelFamily(
    "reasoning models (o1, o3, o4-mini, gpt-5...)",
    pattern=r"o[1-9]|gpt-5",
    temperature=False,
    max_tokens_param="max_completion_tokens",
)
"""Chat Completions refuses `temperature` (other than 1) and `max_tokens` for them."""

PROVIDERS: tuple[ProviderSpec, ...] = (
    ProviderSpec(
        name="openai",
        title="OpenAI",
        examples=("gpt-4o", "o3-mini", "openai/..."),
        wire="openai_chat",
        key_env="OPENAI_API_KEY",
        base_url_env="OPENAI_BASE_URL",
        bare_names=r"gpt-|chatgpt|o[1-9]|text-|davinci",
        families=(OPENAI_REASONING,),
        images=True,
        prompt_caching="automatic",
        batch=True,
        service_tiers=("auto", "default", "flex", "priority"),
        rate_headers="openai",
    ),
    ProviderSpec(
        name="anthropic",
        title="Anthropic",
        examples=("claude-...", "anthropic/..."),
        wire="anthropic_messages",
        needs="key",
        key_env="ANTHROPIC_API_KEY",
        base_url_env="ANTHROPIC_BASE_URL",
        bare_names=r"claude",
        families=(
            # The SDK's Messages API (anthropic 2.x) takes no temperature.
            ModelFamily("models", temperature=False),
        ),
        default_max_tokens=1024,
        structured_output="forced tool",
        images=True,
        prompt_caching="on request",
        batch=True,
        service_tiers=("auto", "standard_only"),
        rate_headers="anthropic",
    ),
    ProviderSpec(
        name=MOCK,
        title="offline",
        examples=("mock",),
        wire="mock",
        needs="nothing",
        bare_names=r"mock$",
        structured_output="sample",
        streaming=False,
        images=True,
        rate_headers=None,
    ),
    ProviderSpec(
        name="ollama",
        title="Ollama",
        examples=("ollama/llama3",),
        wire="openai_chat",
        needs="base url",
        key_env="OLLAMA_API_KEY",
        base_url_env="OLLAMA_BASE_URL",
        default_base_url="http://localhost:11434/v1",
        rate_headers="openai",
    ),
)
BY_NAME = {spec.name: spec for spec in PROVIDERS}


def compatible(name: str) -> ProviderSpec:
    """An OpenAI-compatible server the table does not name, found by `<NAME>_BASE_URL`."""
    upper = name.upper()
    return ProviderSpec(
        name=name,
        title="any OpenAI-compatible server (vLLM, LM Studio, ...)",
        examples=(f"{name}/<model>",),
        wire="openai_chat",
        needs="base url",
        key_env=f"{upper}_API_KEY",
        base_url_env=f"{upper}_BASE_URL",
        rate_headers="openai",
    )


def provider_spec(name: str) -> ProviderSpec:
    return BY_NAME.get(name) or compatible(name)


def family_of(provider: str, model: str) -> ModelFamily:
    return provider_spec(provider).family(model)
