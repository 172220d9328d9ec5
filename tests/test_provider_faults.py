"""Every provider fault, for both providers, ends the way the definition says: retried,
re-asked, fallen back, or failed with a precise reason. None leaves a run running."""

from __future__ import annotations

import asyncio
import json

import pytest
from temporalio.client import WorkflowFailureError

from activities.endpoints import Endpoint
from tests.conftest import definition, new_worker, start
from tests.fake_llm import FakeLlmServer, Fault
from workflows.contracts import RunInput, RunResult

MODELS = {"openai": "gpt-4o-mini", "anthropic": "anthropic/claude-haiku-4-5"}
PLAIN = """
workflow:
  name: Faults
  steps:
    - id: ask
      type: llm_call
      model: {model}
      timeout: "1s"
      retry: {{initial_interval: "50ms", max_attempts: 3}}
      prompt: "Say hello"
      outputs: [reply]
"""
STRUCTURED = PLAIN.replace("outputs: [reply]", "outputs: [{{name: n, type: integer}}]")


async def run(client, llm: FakeLlmServer, text: str) -> RunResult:
    endpoints = {
        "openai": Endpoint(api_key="k", base_url=llm.openai_url),
        "anthropic": Endpoint(api_key="k", base_url=llm.anthropic_url),
    }
    async with new_worker(client, endpoints) as worker:
        handle = await start(client, worker, RunInput(definition=definition(text)))
        return await asyncio.wait_for(handle.result(), 30)


RETRIED = [
    Fault(429, "slow down", {"retry-after": "0.1"}),
    Fault(500, "internal"),
    Fault(503, "overloaded"),
    Fault(kind="reset"),
    Fault(kind="malformed"),
    Fault(kind="empty"),
]


@pytest.mark.parametrize("provider", MODELS)
@pytest.mark.parametrize(
    "fault", RETRIED, ids=lambda f: f.kind if f.kind != "status" else str(f.status)
)
async def test_transient_faults_are_retried(client, provider, fault):
    with FakeLlmServer(reply=lambda r: "hello") as llm:
        llm.fail_next(fault)
        result = await run(client, llm, PLAIN.format(model=MODELS[provider]))
    assert result.outputs == {"reply": "hello"}
    assert result.steps["ask"].attempts == 2
    assert len(llm.requests) == 2


@pytest.mark.parametrize("provider", MODELS)
async def test_a_hanging_response_times_out_and_is_retried(client, provider):
    with (
        FakeLlmServer(reply=lambda r: "hello", latency=1.5) as slow,
        pytest.raises(WorkflowFailureError) as caught,
    ):
        await run(client, slow, PLAIN.format(model=MODELS[provider]))
    assert "step 'ask' failed after 3 attempt(s)" in str(caught.value.cause)
    assert len(slow.requests) == 3


@pytest.mark.parametrize("provider", MODELS)
async def test_a_refusal_fails_for_good_with_the_reason(client, provider):
    with FakeLlmServer() as llm:
        llm.fail_next(Fault(kind="refusal"))
        with pytest.raises(WorkflowFailureError) as caught:
            await run(client, llm, PLAIN.format(model=MODELS[provider]))
    assert "the model refused" in str(caught.value.cause)
    assert len(llm.requests) == 1


async def test_a_refusal_falls_back_to_the_next_model(client):
    text = PLAIN.format(model=MODELS["openai"]).replace(
        "prompt:", 'fallback_models: ["anthropic/claude-haiku-4-5"]\n      prompt:'
    )
    with FakeLlmServer(reply=lambda r: "hello") as llm:
        llm.fail_next(Fault(kind="refusal"))
        result = await run(client, llm, text)
    assert result.outputs == {"reply": "hello"}
    assert [r.path for r in llm.requests] == ["/v1/chat/completions", "/v1/messages"]


@pytest.mark.parametrize("provider", MODELS)
async def test_structured_output_cut_at_max_tokens_is_reasked(client, provider):
    with FakeLlmServer(reply=lambda r: json.dumps({"n": 123456789})) as llm:
        llm.fail_next(Fault(kind="length"))
        result = await run(client, llm, STRUCTURED.format(model=MODELS[provider]))
    assert result.outputs == {"n": 123456789}
    assert "cut off at max_tokens" in llm.requests[1].body["messages"][-1]["content"]


@pytest.mark.parametrize("provider", MODELS)
@pytest.mark.parametrize("status", [400, 401, 403, 404])
async def test_client_errors_fail_at_once(client, provider, status):
    with FakeLlmServer() as llm:
        llm.fail_next(Fault(status, f"error {status}"))
        with pytest.raises(WorkflowFailureError) as caught:
            await run(client, llm, PLAIN.format(model=MODELS[provider]))
    assert f"HTTP {status}: error {status}" in str(caught.value.cause)
    assert len(llm.requests) == 1
