"""LLM providers behind one interface: ``Provider.complete(call) -> Completion``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from workflows.contracts import LlmCallInput, ToolCall, Usage
from workflows.providers import RATE_HEADER_PREFIXES, ProviderSpec


@dataclass(frozen=True)
class Completion:
    text: str
    usage: Usage
    finish_reason: str | None = None
    refusal: str | None = None
    """Set when the model declined to answer."""
    truncated: bool = False
    """The reply stopped at max_tokens."""
    headers: Mapping[str, str] = field(default_factory=dict)
    """The reply's rate-limit headers, for pacing (activities/rate_limits.py)."""
    tool_calls: list[ToolCall] = field(default_factory=list)
    """The tools the model asks to call (the text, if any, comes with them)."""
    service_tier: str | None = None
    """The tier the provider says it served the call at (priced at it)."""


OnText = Callable[[str], None]
"""Told each piece of a streamed reply as it arrives."""


class Provider(Protocol):
    async def complete(self, call: LlmCallInput, on_text: OnText | None = None) -> Completion:
        """The reply; with `on_text`, a plain-text reply (no tools, no structured outputs) is
        streamed and each piece told to it as it arrives."""
        ...


def streams(call: LlmCallInput, on_text: OnText | None) -> bool:
    """Whether to stream this call: someone listens, and the reply is text for people."""
    return on_text is not None and not call.tools and call.response_schema is None


def offered_tier(call: LlmCallInput, spec: ProviderSpec) -> str | None:
    """The step's service tier if the provider takes it (a fallback model of another
    provider is sent none)."""
    return call.service_tier if call.service_tier in spec.service_tiers else None


def rate_limit_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The headers that say how much of the provider's rate limit is left."""
    return {
        key.lower(): value
        for key, value in headers.items()
        if key.lower().startswith(tuple(RATE_HEADER_PREFIXES.values()))
    }


def conversation(call: LlmCallInput) -> list[dict[str, str]]:
    """The messages before the tool loop: the step's `messages`, or its prompt as one user
    message."""
    if call.messages:
        return [{"role": m.role, "content": m.content} for m in call.messages]
    return [{"role": "user", "content": call.prompt}]


def last_user(messages: list[dict[str, Any]]) -> int:
    """Where images go: the last user message."""
    return max((i for i, m in enumerate(messages) if m["role"] == "user"), default=0)


def data_url_parts(url: str) -> tuple[str, str] | None:
    """(media type, base64 data) of a `data:` URL, else None."""
    if not url.startswith("data:") or ";base64," not in url:
        return None
    media, data = url.removeprefix("data:").split(";base64,", 1)
    return media, data
