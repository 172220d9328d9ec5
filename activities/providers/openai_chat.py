"""OpenAI and OpenAI-compatible servers (Ollama, vLLM, LM Studio) through the official SDK."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from openai import AsyncOpenAI
from openai.types import CompletionUsage
from openai.types.chat import ChatCompletion

from activities.providers import (
    Completion,
    OnText,
    conversation,
    last_user,
    offered_tier,
    rate_limit_headers,
    streams,
)
from workflows.contracts import LlmCallInput, ToolCall, Usage
from workflows.providers import BY_NAME, ProviderSpec


class OpenAIChatProvider:
    def __init__(self, client: AsyncOpenAI, spec: ProviderSpec = BY_NAME["openai"]) -> None:
        self._client = client
        self._spec = spec

    @property
    def client(self) -> AsyncOpenAI:
        """The SDK client, which the provider's batch API (providers/batches.py) shares."""
        return self._client

    async def complete(self, call: LlmCallInput, on_text: OnText | None = None) -> Completion:
        body = self.request(call)
        if streams(call, on_text):
            assert on_text is not None
            return await self._streamed(body, on_text)
        raw = await self._client.chat.completions.with_raw_response.create(**body)
        return completion_of(raw.parse(), raw.headers)

    def request(self, call: LlmCallInput) -> dict[str, Any]:
        """The Chat Completions request body for `call` (a batch sends it too)."""
        messages: list[dict[str, Any]] = []
        if call.system:
            messages.append({"role": "system", "content": call.system})
        opening: list[dict[str, Any]] = list(conversation(call))
        if call.images:
            last = last_user(opening)
            parts = [{"type": "text", "text": opening[last]["content"]}]
            parts += [{"type": "image_url", "image_url": {"url": url}} for url in call.images]
            opening[last] = {"role": "user", "content": parts}
        messages += opening
        messages += _turns(call)
        messages += [message.model_dump() for message in call.reasks]
        options: dict[str, Any] = {}
        if call.tools:
            options["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": tool.name,
                        "description": tool.description,
                        "parameters": tool.parameters,
                    },
                }
                for tool in call.tools
            ]
        family = self._spec.family(call.model)  # reasoning models take no temperature
        if call.temperature is not None and family.temperature:
            options["temperature"] = call.temperature
        if call.max_tokens is not None:
            options[family.max_tokens_param] = call.max_tokens
        if call.cache is not None and self._spec.prompt_caching == "automatic":
            # OpenAI caches long prefixes by itself (the system prompt and the conversation
            # come first); one key per step sends its calls where that prefix is cached.
            options["prompt_cache_key"] = call.step_id
        tier = offered_tier(call, self._spec)
        if tier is not None:
            options["service_tier"] = tier
        if call.response_schema is not None:
            options["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "step_outputs", "schema": call.response_schema},
            }
        return {"model": call.model, "messages": messages, **options}

    async def _streamed(self, body: dict[str, Any], on_text: OnText) -> Completion:
        raw = await self._client.chat.completions.with_raw_response.create(
            **body, stream=True, stream_options={"include_usage": True}
        )
        parts: list[str] = []
        finish, usage, refusal, tier = None, None, None, None
        async for chunk in raw.parse():
            usage = chunk.usage or usage
            tier = chunk.service_tier or tier
            for choice in chunk.choices:
                if choice.delta.content:
                    parts.append(choice.delta.content)
                    on_text(choice.delta.content)
                refusal = getattr(choice.delta, "refusal", None) or refusal
                finish = choice.finish_reason or finish
        return Completion(
            text="".join(parts),
            usage=_usage(usage),
            service_tier=tier,
            finish_reason=finish,
            refusal=refusal,
            truncated=finish == "length",
            headers=rate_limit_headers(raw.headers),
        )


def completion_of(response: ChatCompletion, headers: Mapping[str, str]) -> Completion:
    """A reply (realtime, or one line of a batch's results) as the engine reads it."""
    choice = response.choices[0]
    return Completion(
        text=choice.message.content or "",
        usage=_usage(response.usage),
        service_tier=response.service_tier,
        finish_reason=choice.finish_reason,
        refusal=getattr(choice.message, "refusal", None),
        truncated=choice.finish_reason == "length",
        headers=rate_limit_headers(headers),
        tool_calls=[
            ToolCall(id=called.id, name=called.function.name, arguments=_arguments(called))
            for called in choice.message.tool_calls or []
            if called.type == "function"
        ],
    )


def _usage(usage: CompletionUsage | None) -> Usage:
    """Tokens as the reply counts them: `prompt_tokens` includes those read from the cache."""
    if usage is None:
        return Usage()
    details = usage.prompt_tokens_details
    return Usage(
        input_tokens=usage.prompt_tokens,
        output_tokens=usage.completion_tokens,
        cache_read_tokens=(details.cached_tokens or 0) if details else 0,
    )


def _turns(call: LlmCallInput) -> list[dict[str, Any]]:
    """The tool loop so far in OpenAI's shape: the assistant's tool calls, then one `tool`
    message per result."""
    messages: list[dict[str, Any]] = []
    for turn in call.turns:
        messages.append(
            {
                "role": "assistant",
                "content": turn.text or None,
                "tool_calls": [
                    {
                        "id": called.id,
                        "type": "function",
                        "function": {
                            "name": called.name,
                            "arguments": json.dumps(called.arguments),
                        },
                    }
                    for called in turn.calls
                ],
            }
        )
        messages += [
            {"role": "tool", "tool_call_id": result.id, "content": result.content}
            for result in turn.results
        ]
    return messages


def _arguments(called: Any) -> dict[str, Any]:
    """The call's arguments; text that is not a JSON object is passed on as `_raw`, so the
    tool answers with an error the model can read instead of the step failing."""
    try:
        arguments = json.loads(called.function.arguments or "{}")
    except json.JSONDecodeError:
        return {"_raw": called.function.arguments}
    return arguments if isinstance(arguments, dict) else {"_raw": arguments}
