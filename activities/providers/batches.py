"""The providers' batch APIs behind one interface: submit a batch of calls, poll it, read
its results, cancel it. Each request is the realtime request (activities/providers/), so a
batched call sends what a realtime one would."""

from __future__ import annotations

import hashlib
import json
from typing import Protocol

from anthropic import AsyncAnthropic
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletion

from activities.providers import Completion
from activities.providers.anthropic_messages import (
    AnthropicMessagesProvider,
    message_completion,
)
from activities.providers.openai_chat import OpenAIChatProvider, completion_of
from workflows.batch_contracts import BatchState
from workflows.contracts import LlmCallInput

Answers = dict[int, Completion | str]
"""By item index: the completion, or why the provider gave none."""
KEY_FIELD = "idempotency_key"
"""The batch's metadata field (OpenAI) that finds a batch an earlier attempt submitted."""
FIRST_PAGE = 100
"""How many of the newest batches a retried submission looks through for its own."""


class Batcher(Protocol):
    async def submit(self, calls: dict[int, LlmCallInput], key: str) -> str:
        """The batch's id; a batch submitted under `key` before is found, not made again."""
        ...

    async def poll(self, batch_id: str) -> BatchState: ...

    async def results(self, batch_id: str) -> Answers: ...

    async def cancel(self, batch_id: str) -> None: ...


def key_digest(key: str) -> str:
    """Metadata values are short (OpenAI: 512 characters); run ids are not."""
    return hashlib.sha256(key.encode()).hexdigest()


class OpenAIBatcher:
    """OpenAI's Batch API: the requests as a JSONL file (purpose batch), one batch over it."""

    ENDED = ("completed", "failed", "expired", "cancelled")

    def __init__(self, client: AsyncOpenAI, chat: OpenAIChatProvider) -> None:
        self._client = client
        self._chat = chat

    async def submit(self, calls: dict[int, LlmCallInput], key: str) -> str:
        digest = key_digest(key)
        page = await self._client.batches.list(limit=FIRST_PAGE)
        for batch in page.data:
            if (batch.metadata or {}).get(KEY_FIELD) == digest:
                return batch.id
        lines = [
            {
                "custom_id": str(index),
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": self._chat.request(call),
            }
            for index, call in calls.items()
        ]
        data = "".join(json.dumps(line) + "\n" for line in lines).encode()
        uploaded = await self._client.files.create(
            file=(f"batch-{digest[:16]}.jsonl", data), purpose="batch"
        )
        batch = await self._client.batches.create(
            input_file_id=uploaded.id,
            endpoint="/v1/chat/completions",
            completion_window="24h",
            metadata={KEY_FIELD: digest},
        )
        return batch.id

    async def poll(self, batch_id: str) -> BatchState:
        batch = await self._client.batches.retrieve(batch_id)
        counts = batch.request_counts
        return BatchState(
            ended=batch.status in self.ENDED,
            status=batch.status,
            done=counts.completed if counts else 0,
            failed=counts.failed if counts else 0,
            total=counts.total if counts else 0,
        )

    async def results(self, batch_id: str) -> Answers:
        batch = await self._client.batches.retrieve(batch_id)
        answers: Answers = {}
        for file_id in (batch.output_file_id, batch.error_file_id):
            if not file_id:
                continue
            content = await self._client.files.content(file_id)
            for line in content.text.splitlines():
                if line.strip():
                    index, answer = _openai_line(json.loads(line))
                    answers[index] = answer
        return answers

    async def cancel(self, batch_id: str) -> None:
        await self._client.batches.cancel(batch_id)


def _openai_line(line: dict) -> tuple[int, Completion | str]:
    index = int(line["custom_id"])
    response = line.get("response") or {}
    if response.get("status_code") == 200:
        return index, completion_of(ChatCompletion.model_validate(response["body"]), {})
    error = line.get("error") or (response.get("body") or {}).get("error") or {}
    message = error.get("message") if isinstance(error, dict) else None
    return index, str(message or f"HTTP {response.get('status_code')}")


class AnthropicBatcher:
    """Anthropic's Message Batches: the requests in one call, results as JSONL.

    Its batches carry no metadata, so a submission retried after the provider took it but
    before the activity finished (a worker killed in that moment) submits again; once the
    activity has finished, the batch's id is in the run's history and nothing is resent."""

    def __init__(self, client: AsyncAnthropic, messages: AnthropicMessagesProvider) -> None:
        self._client = client
        self._messages = messages

    async def submit(self, calls: dict[int, LlmCallInput], key: str) -> str:
        requests = [
            {"custom_id": f"item-{index}", "params": self._messages.request(call)}
            for index, call in calls.items()
        ]
        # params: the body `messages.create(**body)` takes, built as a dict; the SDK's hint
        # is a TypedDict, which a dict built key by key cannot be
        batch = await self._client.messages.batches.create(requests=requests)  # type: ignore[arg-type]
        return batch.id

    async def poll(self, batch_id: str) -> BatchState:
        batch = await self._client.messages.batches.retrieve(batch_id)
        counts = batch.request_counts
        failed = counts.errored + counts.canceled + counts.expired
        return BatchState(
            ended=batch.processing_status == "ended",
            status=batch.processing_status,
            done=counts.succeeded,
            failed=failed,
            total=counts.processing + counts.succeeded + failed,
        )

    async def results(self, batch_id: str) -> Answers:
        answers: Answers = {}
        async for line in await self._client.messages.batches.results(batch_id):
            index = int(line.custom_id.removeprefix("item-"))
            result = line.result
            if result.type == "succeeded":
                answers[index] = message_completion(result.message, {})
            elif result.type == "errored":
                answers[index] = result.error.error.message
            else:
                answers[index] = f"the batch's request was {result.type}"
        return answers

    async def cancel(self, batch_id: str) -> None:
        await self._client.messages.batches.cancel(batch_id)
