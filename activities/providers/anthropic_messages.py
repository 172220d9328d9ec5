"""Anthropic through the official SDK's Messages API.

What is sent of a step's settings is the provider table's (workflows/providers.py): the
SDK's Messages API (anthropic 2.x) takes no ``temperature``, and requires ``max_tokens``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from anthropic import AsyncAnthropic
from anthropic.types import Message
from anthropic.types import Usage as AnthropicUsage

from activities.providers import (
    Completion,
    OnText,
    conversation,
    data_url_parts,
    last_user,
    offered_tier,
    rate_limit_headers,
    streams,
)
from workflows.contracts import LlmCallInput, ToolCall, Usage
from workflows.providers import BY_NAME, ProviderSpec

EPHEMERAL = {"type": "ephemeral"}
"""Anthropic's cache breakpoint (five minutes, renewed by every read)."""
OUTPUTS_TOOL = "step_outputs"
"""Structured outputs are asked for by forcing a call to this tool, whose input is the JSON."""


class AnthropicMessagesProvider:
    def __init__(self, client: AsyncAnthropic, spec: ProviderSpec = BY_NAME["anthropic"]) -> None:
        self._client = client
        self._spec = spec

    @property
    def client(self) -> AsyncAnthropic:
        """The SDK client, which the provider's batch API (providers/batches.py) shares."""
        return self._client

    def _max_tokens(self, call: LlmCallInput) -> int:
        """The step's, else the table's default: the API requires one."""
        most = call.max_tokens or self._spec.default_max_tokens
        assert most is not None  # ProviderSpec requires it of a Messages API provider
        return most

    async def complete(self, call: LlmCallInput, on_text: OnText | None = None) -> Completion:
        body = self.request(call)
        if streams(call, on_text):
            assert on_text is not None
            return await self._streamed(body, on_text)
        raw = await self._client.messages.with_raw_response.create(**body)
        return message_completion(await raw.parse(), raw.headers)

    def request(self, call: LlmCallInput) -> dict[str, Any]:
        """The Messages API request body for `call` (a batch sends it too)."""
        options: dict[str, Any] = {}
        if call.system:
            options["system"] = call.system
            if call.cache == "system":
                options["system"] = [
                    {"type": "text", "text": call.system, "cache_control": EPHEMERAL}
                ]
        tier = offered_tier(call, self._spec)
        if tier is not None:
            options["service_tier"] = tier
        tools = [
            {"name": tool.name, "description": tool.description, "input_schema": tool.parameters}
            for tool in call.tools
        ]
        if call.response_schema is not None:
            tools.append(
                {
                    "name": OUTPUTS_TOOL,
                    "description": "Record the outputs of this step (the final answer).",
                    "input_schema": call.response_schema,
                }
            )
            # With tools of its own the model chooses; calling OUTPUTS_TOOL is its answer.
            options["tool_choice"] = (
                {"type": "auto"} if call.tools else {"type": "tool", "name": OUTPUTS_TOOL}
            )
        if tools:
            options["tools"] = tools
        messages: list[dict[str, Any]] = list(conversation(call))
        if call.images:
            last = last_user(messages)
            parts: list[dict[str, Any]] = [_image(url) for url in call.images]
            parts.append({"type": "text", "text": messages[last]["content"]})
            messages[last] = {"role": "user", "content": parts}
        if call.cache == "messages":
            _mark_cache(messages, last_user(messages))
        for index, message in enumerate(call.messages):
            if message.cache:  # a marked prefix: the conversation up to this message
                _mark_cache(messages, index)
        messages += _turns(call)
        messages += [message.model_dump() for message in call.reasks]
        return {
            "model": call.model,
            "max_tokens": self._max_tokens(call),
            "messages": messages,
            **options,
        }

    async def _streamed(self, body: dict[str, Any], on_text: OnText) -> Completion:
        raw = await self._client.messages.with_raw_response.create(**body, stream=True)
        parts: list[str] = []
        stop, started, tokens_out = None, None, 0
        async for event in await raw.parse():
            if event.type == "message_start":
                started = event.message.usage
            elif event.type == "content_block_delta" and event.delta.type == "text_delta":
                parts.append(event.delta.text)
                on_text(event.delta.text)
            elif event.type == "message_delta":
                stop = event.delta.stop_reason or stop
                tokens_out = event.usage.output_tokens
        return Completion(
            text="".join(parts),
            usage=_usage(started, tokens_out) if started else Usage(output_tokens=tokens_out),
            service_tier=started.service_tier if started else None,
            finish_reason=stop,
            refusal="the model declined to answer" if stop == "refusal" else None,
            truncated=stop == "max_tokens",
            headers=rate_limit_headers(raw.headers),
        )


def message_completion(response: Message, headers: Mapping[str, str]) -> Completion:
    """A reply (realtime, or one result of a batch) as the engine reads it."""
    uses = [block for block in response.content if block.type == "tool_use"]
    answers = [block.input for block in uses if block.name == OUTPUTS_TOOL]
    if answers:
        text, uses = json.dumps(answers[0]), []
    else:
        text = "".join(block.text for block in response.content if block.type == "text")
    return Completion(
        text=text,
        usage=_usage(response.usage, response.usage.output_tokens),
        service_tier=response.usage.service_tier,
        finish_reason=response.stop_reason,
        refusal="the model declined to answer" if response.stop_reason == "refusal" else None,
        truncated=response.stop_reason == "max_tokens",
        headers=rate_limit_headers(headers),
        tool_calls=[
            ToolCall(
                id=block.id,
                name=block.name,
                arguments=block.input if isinstance(block.input, dict) else {},
            )
            for block in uses
        ],
    )


def _usage(usage: AnthropicUsage, output_tokens: int) -> Usage:
    """Anthropic counts cache reads and writes apart from `input_tokens`; ours holds all."""
    read = usage.cache_read_input_tokens or 0
    written = usage.cache_creation_input_tokens or 0
    return Usage(
        input_tokens=usage.input_tokens + read + written,
        output_tokens=output_tokens,
        cache_read_tokens=read,
        cache_write_tokens=written,
    )


def _mark_cache(messages: list[dict[str, Any]], at: int) -> None:
    """A cache breakpoint on the last block of message `at`: everything up to it (tools,
    system, the conversation) is the cached prefix."""
    content = messages[at]["content"]
    blocks = [{"type": "text", "text": content}] if isinstance(content, str) else list(content)
    blocks[-1] = {**blocks[-1], "cache_control": EPHEMERAL}
    messages[at] = {**messages[at], "content": blocks}


def _image(url: str) -> dict[str, Any]:
    """An image block: base64 for a file the worker read (a data: URL), else the URL."""
    inline = data_url_parts(url)
    if inline is None:
        return {"type": "image", "source": {"type": "url", "url": url}}
    media, data = inline
    return {"type": "image", "source": {"type": "base64", "media_type": media, "data": data}}


def _turns(call: LlmCallInput) -> list[dict[str, Any]]:
    """The tool loop so far in Anthropic's shape: the assistant's `tool_use` blocks, then a
    user message of `tool_result` blocks."""
    messages: list[dict[str, Any]] = []
    for turn in call.turns:
        content: list[dict[str, Any]] = [{"type": "text", "text": turn.text}] if turn.text else []
        content += [
            {"type": "tool_use", "id": called.id, "name": called.name, "input": called.arguments}
            for called in turn.calls
        ]
        messages.append({"role": "assistant", "content": content})
        results = [
            {
                "type": "tool_result",
                "tool_use_id": result.id,
                "content": result.content,
                "is_error": result.is_error,
            }
            for result in turn.results
        ]
        messages.append({"role": "user", "content": results})
    return messages
