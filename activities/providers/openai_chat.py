"""OpenAI and OpenAI-compatible servers (Ollama, vLLM, LM Studio) through the official SDK."""

from __future__ import annotations

from typing import Any

from openai import AsyncOpenAI

from activities.providers import Completion
from workflows.contracts import LlmCallInput, Usage


class OpenAIChatProvider:
    def __init__(self, client: AsyncOpenAI) -> None:
        self._client = client

    async def complete(self, call: LlmCallInput) -> Completion:
        messages: list[dict[str, Any]] = []
        if call.system:
            messages.append({"role": "system", "content": call.system})
        messages.append({"role": "user", "content": call.prompt})
        messages += [message.model_dump() for message in call.reasks]
        options: dict[str, Any] = {}
        if call.temperature is not None:
            options["temperature"] = call.temperature
        if call.max_tokens is not None:
            options["max_tokens"] = call.max_tokens
        if call.response_schema is not None:
            options["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "step_outputs", "schema": call.response_schema},
            }
        response = await self._client.chat.completions.create(
            model=call.model, messages=messages, **options
        )
        choice = response.choices[0]
        usage = response.usage
        return Completion(
            text=choice.message.content or "",
            usage=Usage(
                input_tokens=usage.prompt_tokens if usage else 0,
                output_tokens=usage.completion_tokens if usage else 0,
            ),
            finish_reason=choice.finish_reason,
            refusal=getattr(choice.message, "refusal", None),
            truncated=choice.finish_reason == "length",
        )
