"""Anthropic through the official SDK's Messages API.

The SDK's Messages API (anthropic 2.x) takes no ``temperature``; a step's temperature is
therefore not sent to Anthropic models (documented in the README).
"""

from __future__ import annotations

from typing import Any

from anthropic import AsyncAnthropic

from activities.providers import Completion
from workflows.contracts import LlmCallInput, Usage

DEFAULT_MAX_TOKENS = 1024
"""Anthropic requires max_tokens; this is used when neither the step nor the defaults set it."""


class AnthropicMessagesProvider:
    def __init__(self, client: AsyncAnthropic) -> None:
        self._client = client

    async def complete(self, call: LlmCallInput) -> Completion:
        options: dict[str, Any] = {}
        if call.system:
            options["system"] = call.system
        response = await self._client.messages.create(
            model=call.model,
            max_tokens=call.max_tokens or DEFAULT_MAX_TOKENS,
            messages=[{"role": "user", "content": call.prompt}],
            **options,
        )
        text = "".join(block.text for block in response.content if block.type == "text")
        return Completion(
            text=text,
            usage=Usage(
                input_tokens=response.usage.input_tokens,
                output_tokens=response.usage.output_tokens,
            ),
            finish_reason=response.stop_reason,
        )
