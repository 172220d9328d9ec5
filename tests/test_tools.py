"""Tools on an llm_call: the model calls actions and other definitions in a durable loop,
in OpenAI's and Anthropic's tool-call wire formats; a failing tool answers the model; the
loop stops at max_turns; a worker lost mid-loop repeats no finished turn or tool call."""

from __future__ import annotations

import asyncio
import sys
import threading
import uuid
from pathlib import Path

import pytest
from pydantic import BaseModel

from activities.definitions import load_text_bundle
from activities.mcp_servers import McpServer
from activities.registry import ActionSpec, params_models
from tests.conftest import new_worker
from tests.fake_llm import Request, ToolUse
from workflows.contracts import ActionInput, RunInput, RunResult
from workflows.interpreter import YamlWorkflow

GREETER = """
workflow:
  name: Greeter
  description: Greets a person by name
  variables:
    user_name: {type: string, description: "who to greet"}
  steps:
    - {id: hello, type: set, values: {greeting: "Hello {{ user_name }}"}}
"""

AGENT = """
workflow:
  name: agent
  steps:
    - id: answer
      type: llm_call
      model: {model}
      prompt: "Where is order A-7? Greet Kim too."
      tools:
        - action: lookup_order
          params: {{region: "eu"}}
        - workflow: greeter.yaml
      max_turns: {max_turns}
"""


class OrderParams(BaseModel):
    """Look up an order by its id."""

    order_id: str
    region: str = "us"


class Orders:
    def __init__(self) -> None:
        self.calls: list[OrderParams] = []

    def lookup(self, params: OrderParams, request: ActionInput) -> dict:
        """Finds an order: its status and where it ships from."""
        self.calls.append(params)
        return {"order": params.order_id, "region": params.region, "status": "shipped"}


def bundle(tmp_path: Path, actions: dict, model: str, max_turns: int = 4):
    (tmp_path / "greeter.yaml").write_text(GREETER)
    text = AGENT.format(model=model, max_turns=max_turns)
    return load_text_bundle(text, "agent.yaml", tmp_path / "agent.yaml", params_models(actions))


async def run(client, worker, loaded) -> RunResult:
    handle = await client.start_workflow(
        YamlWorkflow.run,
        RunInput(definition=loaded.definition, children=loaded.children),
        id=f"agent-{uuid.uuid4()}",
        task_queue=worker.task_queue,
    )
    return await handle.result()


def script(request: Request) -> str | list[ToolUse]:
    if not request.tool_results:
        return [
            ToolUse("lookup_order", {"order_id": "A-7", "region": "us"}),
            ToolUse("Greeter", {"user_name": "Kim"}),
        ]
    return "Answer: " + " | ".join(request.tool_results)


@pytest.mark.parametrize("model", ["openai/gpt-4o-mini", "anthropic/claude-haiku-4-5"])
async def test_the_model_calls_actions_and_workflows_until_it_answers(
    client, endpoints, fake_llm, tmp_path, model
):
    orders = Orders()
    actions = {"lookup_order": ActionSpec("lookup_order", OrderParams, orders.lookup)}
    fake_llm.reply = script
    async with new_worker(client, endpoints, actions=actions) as worker:
        result = await run(client, worker, bundle(tmp_path, actions, model))
    first, second = fake_llm.requests
    assert sorted(first.offered_tools) == ["Greeter", "lookup_order"]
    assert "order_id" in str(first.body["tools"]) and "region" not in str(first.body["tools"])
    text = result.steps["answer"].outputs["text"]
    assert '"status": "shipped"' in text and '"greeting": "Hello Kim"' in text
    assert [call.region for call in orders.calls] == ["eu"]  # the definition's param wins
    assert second.tool_results and result.steps["answer"].usage.input_tokens > 0


async def test_a_failing_tool_answers_the_model_and_max_turns_stops_the_loop(
    client, endpoints, fake_llm, tmp_path
):
    orders = Orders()
    actions = {"lookup_order": ActionSpec("lookup_order", OrderParams, orders.lookup)}

    def bad_arguments(request: Request) -> str | list[ToolUse]:
        if not request.tool_results:
            return [ToolUse("lookup_order", {}), ToolUse("no_such_tool", {})]
        return "Sorry: " + " | ".join(request.tool_results)

    fake_llm.reply = bad_arguments
    async with new_worker(client, endpoints, actions=actions) as worker:
        result = await run(client, worker, bundle(tmp_path, actions, "openai/gpt-4o"))
        text = result.steps["answer"].outputs["text"]
        assert "the tool failed: lookup_order: invalid params: order_id: Field required" in text
        assert "no tool named 'no_such_tool'" in text
        assert orders.calls == []

        fake_llm.reply = lambda request: [ToolUse("Greeter", {"user_name": "again"})]
        with pytest.raises(Exception) as failed:
            await run(client, worker, bundle(tmp_path, actions, "openai/gpt-4o", max_turns=2))
    cause = failed.value.cause  # type: ignore[attr-defined]
    assert "still calling tools after 2 turn(s) (max_turns)" in str(cause)


async def test_a_worker_lost_mid_loop_repeats_no_finished_turn_or_tool_call(
    client, endpoints, fake_llm, tmp_path
):
    orders = Orders()
    actions = {"lookup_order": ActionSpec("lookup_order", OrderParams, orders.lookup)}
    second_turn = threading.Event()
    release = threading.Event()

    def slow_answer(request: Request) -> str | list[ToolUse]:
        if not request.tool_results:
            return [ToolUse("lookup_order", {"order_id": "A-7"})]
        second_turn.set()
        release.wait(30)  # the worker that asked is gone by now
        return "Answer: " + request.tool_results[0]

    fake_llm.reply = slow_answer
    loaded = bundle(tmp_path, actions, "openai/gpt-4o")
    async with new_worker(client, endpoints, actions=actions) as first:
        handle = await client.start_workflow(
            YamlWorkflow.run,
            RunInput(definition=loaded.definition, children=loaded.children),
            id=f"agent-{uuid.uuid4()}",
            task_queue=first.task_queue,
        )
        await asyncio.to_thread(second_turn.wait, 30)
        queue = first.task_queue
    release.set()  # the first worker has stopped mid-call; a new one takes over
    async with new_worker(client, endpoints, actions=actions, task_queue=queue):
        result = await handle.result()
    assert "shipped" in result.steps["answer"].outputs["text"]
    assert len(orders.calls) == 1  # the finished tool call was not made again
    first_turns = [r for r in fake_llm.requests if not r.tool_results]
    assert len(first_turns) == 1  # nor the finished first turn


async def test_the_tools_of_a_real_mcp_server_are_offered_and_called(
    client, endpoints, fake_llm, tmp_path
):
    """`mcp-server-time` (from PyPI, not ours) over stdio, as MCP_SERVERS configures it."""
    time_server = McpServer(
        "time", command=(sys.executable, "-m", "mcp_server_time", "--local-timezone", "UTC")
    )

    def ask_the_time(request: Request) -> str | list[ToolUse]:
        if not request.tool_results:
            return [ToolUse("get_current_time", {"timezone": "Asia/Tokyo"})]
        return "In Tokyo: " + request.tool_results[0]

    fake_llm.reply = ask_the_time
    text = """
workflow:
  name: clock
  steps:
    - id: answer
      type: llm_call
      model: anthropic/claude-haiku-4-5
      prompt: "What time is it in Tokyo?"
      tools: [{mcp: time}]
"""
    loaded = load_text_bundle(text, "clock.yaml", tmp_path / "clock.yaml")
    async with new_worker(client, endpoints, mcp_servers={"time": time_server}) as worker:
        result = await run(client, worker, loaded)
    assert "get_current_time" in fake_llm.requests[0].offered_tools
    answer = result.steps["answer"].outputs["text"]
    assert answer.startswith("In Tokyo: ") and "Asia/Tokyo" in answer and "datetime" in answer


class CallParams(BaseModel):
    """Call the partner API."""

    question: str
    token: str


async def test_a_tool_uses_a_secret_the_model_never_sees(client, endpoints, fake_llm, tmp_path):
    def partner(params: CallParams, request: ActionInput) -> str:
        return f"answered {params.question!r} with token {params.token}"

    actions = {"ask_partner": ActionSpec("ask_partner", CallParams, partner)}
    fake_llm.reply = lambda request: (
        [ToolUse("ask_partner", {"question": "stock?", "token": "from the model"})]
        if not request.tool_results
        else "Done: " + request.tool_results[0]
    )
    text = """
workflow:
  name: partner
  steps:
    - id: answer
      type: llm_call
      model: openai/gpt-4o
      prompt: "Ask the partner about stock"
      tools:
        - action: ask_partner
          params: {token: "{{ secrets.PARTNER_TOKEN }}"}
"""
    loaded = load_text_bundle(text, "p.yaml", tmp_path / "p.yaml", params_models(actions))
    secrets = {"PARTNER_TOKEN": "s3cr3t-value"}
    async with new_worker(client, endpoints, actions=actions, secrets=secrets) as worker:
        result = await run(client, worker, loaded)
    answer = result.steps["answer"].outputs["text"]
    assert "answered 'stock?'" in answer and "from the model" not in answer  # fixed param won
    assert all("s3cr3t-value" not in str(request.body) for request in fake_llm.requests)
    assert "token" not in str(fake_llm.requests[0].body["tools"])  # not offered to the model


HOSTILE = (
    "{{ secrets.OPENAI_API_KEY }} "
    "{% for a in range(999999) %}{% for b in range(999999) %}x{% endfor %}{% endfor %}"
)


async def test_a_models_arguments_and_a_tools_answer_are_plain_text(
    client, endpoints, fake_llm, tmp_path
):
    orders = Orders()
    actions = {"lookup_order": ActionSpec("lookup_order", OrderParams, orders.lookup)}
    fake_llm.reply = lambda request: (
        [ToolUse("lookup_order", {"order_id": HOSTILE})]
        if not request.tool_results
        else "Seen: " + request.tool_results[0]
    )
    async with new_worker(client, endpoints, actions=actions) as worker:
        result = await run(client, worker, bundle(tmp_path, actions, "openai/gpt-4o"))
    assert [call.order_id for call in orders.calls] == [HOSTILE]  # never rendered
    assert HOSTILE in fake_llm.requests[1].tool_results[0]  # sent back as it came
    assert HOSTILE in result.steps["answer"].outputs["text"]
