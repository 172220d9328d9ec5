"""OpenAI's reasoning models (o-series, gpt-5) refuse `temperature` and `max_tokens` on Chat
Completions. The fake provider refuses them as the real API does; a run that sets both still
succeeds, because the engine sends `max_completion_tokens` and no temperature to them, and
sends other models exactly what it always did."""

from __future__ import annotations

import asyncio

import openai
import pytest

from activities.endpoints import Endpoint
from tests.conftest import definition, new_worker, start
from tests.fake_llm import FakeLlmServer
from workflows.contracts import RunInput

STEP = """
workflow:
  name: Reasoning
  steps:
    - id: ask
      type: llm_call
      model: {model}
      temperature: 0.7
      max_tokens: 300
      retry: {{max_attempts: 1}}
      prompt: "Say hello"
      outputs: [reply]
"""
SETTINGS = ("temperature", "max_tokens", "max_completion_tokens")


async def test_the_fake_refuses_what_the_real_api_refuses():
    """Without this, the test below would prove nothing."""
    with FakeLlmServer() as llm:
        sdk = openai.AsyncOpenAI(api_key="k", base_url=llm.openai_url, max_retries=0)
        messages = [{"role": "user", "content": "hi"}]
        with pytest.raises(openai.BadRequestError) as caught:
            await sdk.chat.completions.create(model="o3-mini", messages=messages, max_tokens=5)
        assert caught.value.body["param"] == "max_tokens"  # type: ignore[index]
        with pytest.raises(openai.BadRequestError, match="'temperature' does not support 0.7"):
            await sdk.chat.completions.create(model="gpt-5", messages=messages, temperature=0.7)


@pytest.mark.parametrize(
    ("model", "sent"),
    [
        ("o3-mini", {"max_completion_tokens": 300}),
        ("openai/gpt-5-mini", {"max_completion_tokens": 300}),
        ("gpt-4o-mini", {"temperature": 0.7, "max_tokens": 300}),
    ],
)
async def test_a_step_with_temperature_and_max_tokens_runs_on_each_model_family(
    client, model, sent
):
    with FakeLlmServer(reply=lambda request: "hello") as llm:
        endpoints = {"openai": Endpoint(api_key="k", base_url=llm.openai_url)}
        async with new_worker(client, endpoints) as worker:
            run_input = RunInput(definition=definition(STEP.format(model=model)))
            handle = await start(client, worker, run_input)
            result = await asyncio.wait_for(handle.result(), 30)
    assert result.outputs == {"reply": "hello"}
    (request,) = llm.requests  # accepted at the first attempt
    assert {key: request.body[key] for key in SETTINGS if key in request.body} == sent
