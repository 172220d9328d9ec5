"""LLM providers behind one interface: ``Provider.complete(call) -> Completion``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from workflows.contracts import LlmCallInput, Usage


@dataclass(frozen=True)
class Completion:
    text: str
    usage: Usage
    finish_reason: str | None = None
    refusal: str | None = None
    """Set when the model declined to answer."""
    truncated: bool = False
    """The reply stopped at max_tokens."""


class Provider(Protocol):
    async def complete(self, call: LlmCallInput) -> Completion: ...
