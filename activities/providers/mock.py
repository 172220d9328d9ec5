"""The offline provider: deterministic replies, clearly labelled, no network and no key."""

from __future__ import annotations

from activities.providers import Completion
from workflows.contracts import LlmCallInput, Usage


class MockProvider:
    """Answers every prompt with a labelled echo, so a workflow can be tried without a key."""

    async def complete(self, call: LlmCallInput) -> Completion:
        prompt = " ".join(call.prompt.split())
        text = f"[offline mock reply, model {call.model}] You asked: {prompt[:200]}"
        return Completion(
            text=text,
            usage=Usage(
                input_tokens=len(call.prompt.split()) + len((call.system or "").split()),
                output_tokens=len(text.split()),
            ),
            finish_reason="stop",
        )
