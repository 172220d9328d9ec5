"""Anthropic through the official SDK's Messages API.

The SDK's Messages API (anthropic 2.x) takes no ``temperature``; a step's temperature is
therefore not sent to Anthropic models (documented in the README).
"""

from __future__ import annotations

import json
from typing import Any

from anthropic import AsyncAnthropic

from activities.providers import Completion
from workflows.contracts import LlmCallInput, Usage

DEFAULT_MAX_TOKENS = 1024
"""Anthropic requires max_tokens; this is used when neither the step nor the defaults set it."""
OUTPUTS_TOOL = "step_outputs"
"""Structured outputs are asked for by forcing a call to this tool, whose input is the JSON."""


class AnthropicMessagesProvider:
    def __init__(self, client: AsyncAnthropic) -> None:
        self._client = client

    async def complete(self, call: LlmCallInput) -> Completion:
        options: dict[str, Any] = {}
        if call.system:
            options["system"] = call.system
        if call.response_schema is not None:
            options["tools"] = [
                {
                    "name": OUTPUTS_TOOL,
                    "description": "Record the outputs of this step.",
                    "input_schema": call.response_schema,
                }
            ]
            options["tool_choice"] = {"type": "tool", "name": OUTPUTS_TOOL}
        messages = [{"role": "user", "content": call.prompt}]
        messages += [message.model_dump() for message in call.reasks]
        response = await self._client.messages.create(
            model=call.model,
            max_tokens=call.max_tokens or DEFAULT_MAX_TOKENS,
            messages=messages,
            **options,
        )
        tool_inputs = [block.input for block in response.content if block.type == "tool_use"]
        if tool_inputs:
            text = json.dumps(tool_inputs[0])
        else:
            text = "".join(block.text for block in response.content if block.type == "text")
        return Completion(
            text=text,
            usage=Usage(
                input_tokens=response.usage.input_tokens,
                output_tokens=response.usage.output_tokens,
            ),
            finish_reason=response.stop_reason,
            refusal="the model declined to answer" if response.stop_reason == "refusal" else None,
            truncated=response.stop_reason == "max_tokens",
        )
