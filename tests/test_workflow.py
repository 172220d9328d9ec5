"""YamlWorkflow against a real dev server, with providers over HTTP to a local fake."""

from __future__ import annotations

import pytest
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError

from activities.endpoints import Endpoint
from tests.conftest import ROOT, definition, new_worker, start
from tests.fake_llm import FakeLlmServer, Fault
from workflows.contracts import RunInput, RunResult

HELLO = (ROOT / "definitions" / "hello_world.yaml").read_text()

CHAIN = """
workflow:
  name: Chain
  variables:
    topic: "tides"
    audience: {type: string, default: "children"}
  defaults:
    retry: {initial_interval: "50ms", max_attempts: 4}
  steps:
    - id: draft
      type: llm_call
      model: gpt-4o-mini
      system: "You write for {{ audience }}."
      prompt: "Explain {{ topic }}."
      outputs: [explanation]
    - id: shorten
      type: llm_call
      model: anthropic/claude-haiku-4-5
      prompt: "Shorten: {{ explanation }} ({{ steps.draft.status }})"
      max_tokens: 50
  outputs:
    summary: "{{ steps.shorten.outputs.text }}"
"""


async def run(client: Client, endpoints: dict[str, Endpoint], run_input: RunInput) -> RunResult:
    async with new_worker(client, endpoints) as worker:
        handle = await start(client, worker, run_input)
        return await handle.result()


async def failure(client: Client, endpoints: dict[str, Endpoint], run_input: RunInput) -> str:
    with pytest.raises(WorkflowFailureError) as caught:
        await run(client, endpoints, run_input)
    cause = caught.value.cause
    assert isinstance(cause, ApplicationError)
    return cause.message


async def test_hello_world_sends_the_rendered_prompt_to_openai(client, endpoints, fake_llm):
    result = await run(
        client, endpoints, RunInput(definition=definition(HELLO), variables={"user_name": "Alice"})
    )
    assert result.status == "completed"
    assert result.workflow_name == "HelloWorld"
    assert result.outputs == {"greeting": "Hello from gpt-4"}
    [request] = fake_llm.requests
    assert request.path == "/v1/chat/completions"
    assert "Alice" in request.prompt_text
    assert request.headers["authorization"] == "Bearer test-key"
    step = result.steps["greet"]
    assert (step.status, step.attempts) == ("completed", 1)
    assert step.usage.input_tokens > 0 and step.usage == result.usage
    usage = result.usage  # gpt-4 is priced at $30 / $60 per million tokens
    assert usage.cost_usd == round((usage.input_tokens * 30 + usage.output_tokens * 60) / 1e6, 8)
    assert usage.cost_usd > 0


async def test_variable_default_is_used_when_the_run_gives_none(client, endpoints, fake_llm):
    await run(client, endpoints, RunInput(definition=definition(HELLO)))
    assert "World" in fake_llm.requests[0].prompt_text


async def test_anthropic_model_goes_to_the_messages_api(client, endpoints, fake_llm):
    text = HELLO.replace('"gpt-4"', '"anthropic/claude-opus-4-6"')
    result = await run(
        client, endpoints, RunInput(definition=definition(text), variables={"user_name": "Alice"})
    )
    [request] = fake_llm.requests
    assert request.path == "/v1/messages"
    assert request.body["model"] == "claude-opus-4-6"
    assert "Alice" in request.prompt_text
    # the SDK sends the key as x-api-key or, in 2.x, as a bearer token
    key, bearer = request.headers.get("x-api-key"), request.headers.get("authorization")
    assert key == "test-key" or bearer == "Bearer test-key"
    assert request.headers["x-stainless-retry-count"] == "0"
    assert result.outputs["greeting"] == "Hello from claude-opus-4-6"


async def test_outputs_flow_to_later_steps_by_name(client, endpoints, fake_llm):
    fake_llm.reply = lambda request: f"reply {len(fake_llm.requests)}"
    result = await run(
        client, endpoints, RunInput(definition=definition(CHAIN), variables={"topic": "stars"})
    )
    first, second = fake_llm.requests
    assert first.body["messages"][0] == {"role": "system", "content": "You write for children."}
    assert "Explain stars." in first.prompt_text
    assert second.path == "/v1/messages" and second.body["max_tokens"] == 50
    assert "Shorten: reply 1 (completed)" in second.prompt_text
    assert result.outputs == {"explanation": "reply 1", "summary": "reply 2"}
    assert result.steps["shorten"].outputs == {"text": "reply 2"}
    assert result.usage.output_tokens == sum(s.usage.output_tokens for s in result.steps.values())


async def test_rate_limited_call_is_retried_until_it_succeeds(client, endpoints, fake_llm):
    limited = Fault(429, "slow down", {"retry-after": "0.1"})
    fake_llm.fail_next(limited, limited)
    result = await run(client, endpoints, RunInput(definition=definition(CHAIN)))
    assert result.status == "completed"
    assert len(fake_llm.requests) == 4  # 3 for the first step, 1 for the second
    assert result.steps["draft"].attempts == 3


async def test_server_errors_are_retried_with_the_default_policy(client, endpoints, fake_llm):
    fake_llm.fail_next(Fault(503, "overloaded"))
    result = await run(client, endpoints, RunInput(definition=definition(HELLO)))
    assert result.steps["greet"].attempts == 2
    assert len(fake_llm.requests) == 2


async def test_unauthorized_fails_at_once_with_a_readable_reason(client, endpoints, fake_llm):
    fake_llm.fail_next(Fault(401, "Incorrect API key provided"))
    message = await failure(client, endpoints, RunInput(definition=definition(HELLO)))
    assert len(fake_llm.requests) == 1
    assert "step 'greet'" in message
    assert "after 1 attempt(s)" in message
    assert "openai/gpt-4" in message
    assert "HTTP 401: Incorrect API key provided" in message


async def test_attempts_run_out_and_the_run_fails(client, endpoints, fake_llm):
    fake_llm.fail_next(*[Fault(500, "boom")] * 4)
    message = await failure(client, endpoints, RunInput(definition=definition(CHAIN)))
    assert len(fake_llm.requests) == 4
    assert "step 'draft' failed after 4 attempt(s)" in message
    assert "HTTP 500: boom" in message


async def test_fallback_model_answers_when_the_first_fails_for_good(client, endpoints, fake_llm):
    text = HELLO.replace(
        'model: "gpt-4"', 'model: "gpt-4"\n      fallback_models: ["anthropic/claude-haiku-4-5"]'
    )
    fake_llm.fail_next(Fault(404, "model not found"))
    result = await run(client, endpoints, RunInput(definition=definition(text)))
    assert [r.path for r in fake_llm.requests] == ["/v1/chat/completions", "/v1/messages"]
    assert result.outputs["greeting"] == "Hello from claude-haiku-4-5"
    assert result.steps["greet"].attempts == 2


async def test_on_error_continue_records_the_failure_and_goes_on(client, endpoints, fake_llm):
    text = CHAIN.replace(
        "outputs: [explanation]", "outputs: [explanation]\n      on_error: continue"
    )
    fake_llm.fail_next(Fault(400, "bad request"))
    fake_llm.reply = lambda request: "short"
    text = text.replace("Shorten: {{ explanation }}", "Shorten: {{ explanation is none }}")
    result = await run(client, endpoints, RunInput(definition=definition(text)))
    draft = result.steps["draft"]
    assert draft.status == "failed" and draft.outputs is None
    assert "HTTP 400: bad request" in (draft.error or "")
    assert result.outputs["explanation"] is None
    assert "Shorten: True" in fake_llm.requests[1].prompt_text


async def test_when_false_skips_the_step(client, endpoints, fake_llm):
    text = HELLO.replace(
        "type: llm_call", "type: llm_call\n      when: \"{{ user_name != 'nobody' }}\""
    )
    result = await run(
        client, endpoints, RunInput(definition=definition(text), variables={"user_name": "nobody"})
    )
    assert fake_llm.requests == []
    assert result.steps["greet"].status == "skipped"
    assert result.outputs == {"greeting": None}


async def test_definition_file_is_loaded_once_by_an_activity(client, endpoints, fake_llm):
    async with new_worker(client, endpoints) as worker:
        handle = await start(
            client,
            worker,
            RunInput(definition_file="definitions/hello_world.yaml", variables={"user_name": "Al"}),
        )
        result = await handle.result()
        history = await handle.fetch_history()
    assert result.outputs["greeting"] == "Hello from gpt-4"
    scheduled = [
        event.activity_task_scheduled_event_attributes.activity_type.name
        for event in history.events
        if event.HasField("activity_task_scheduled_event_attributes")
    ]
    assert scheduled == ["load_definition", "llm_call"]


async def test_missing_definition_file_fails_the_run_with_its_name(client, endpoints):
    message = await failure(client, endpoints, RunInput(definition_file="definitions/nope.yaml"))
    assert "definitions/nope.yaml" in message


async def test_unknown_variable_fails_before_any_call(client, endpoints, fake_llm):
    run_input = RunInput(definition=definition(HELLO), variables={"usr_name": "Al"})
    message = await failure(client, endpoints, run_input)
    assert message == "unknown variable 'usr_name' — did you mean 'user_name'?"
    assert fake_llm.requests == []


async def test_mock_provider_answers_offline(client, fake_llm):
    run_input = RunInput(
        definition=definition(HELLO), variables={"user_name": "Alice"}, mock_providers=["openai"]
    )
    result = await run(client, {}, run_input)
    assert result.outputs["greeting"].startswith("[offline mock reply, model gpt-4]")
    assert "Alice" in result.outputs["greeting"]
    assert fake_llm.requests == []


async def test_unconfigured_provider_fails_with_how_to_configure_it(client):
    message = await failure(client, {}, RunInput(definition=definition(HELLO)))
    assert "set OPENAI_API_KEY" in message


async def test_slow_provider_times_out_and_is_retried(client, endpoints):
    with FakeLlmServer(latency=1.5) as slow:
        text = HELLO.replace(
            "temperature: 0.7",
            'temperature: 0.7\n      timeout: "500ms"\n'
            '      retry: {max_attempts: 2, initial_interval: "10ms"}',
        )
        message = await failure(
            client,
            {"openai": Endpoint(base_url=slow.openai_url)},
            RunInput(definition=definition(text)),
        )
        assert "step 'greet' failed after 2 attempt(s)" in message
        assert len(slow.requests) == 2
