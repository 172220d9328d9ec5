"""Bounds on what a model's tool calls can grow or reach: child runs nest at most
`max_depth` deep (a definition that offers itself as a tool stops there), a step's tool
calls stop at `max_tool_calls` across turns, and a call may set only the arguments the
definition leaves open (never save_to_file's `shared` or database_insert's `table` and
`connection` unless the tool entry offers them)."""

from __future__ import annotations

import sqlite3
import uuid

import pytest
from temporalio.client import WorkflowFailureError

from activities.definitions import load_text_bundle
from activities.registry import ActionSpec, params_models
from tests.conftest import new_worker
from tests.fake_llm import Request, ToolUse
from tests.test_actions import actions_for
from tests.test_tools import OrderParams, Orders
from workflows.contracts import RunInput, RunResult
from workflows.errors import DefinitionError
from workflows.interpreter import YamlWorkflow

SELF_AS_TOOL = """
workflow:
  name: Deeper
  steps:
    - id: think
      type: llm_call
      model: openai/gpt-4o-mini
      prompt: "Think deeper"
      tools: [{workflow: deeper.yaml}]
      outputs: [answer]
"""


async def run(client, worker, loaded, prefix: str = "bounds") -> RunResult:
    handle = await client.start_workflow(
        YamlWorkflow.run,
        RunInput(definition=loaded.definition, children=loaded.children),
        id=f"{prefix}-{uuid.uuid4()}",
        task_queue=worker.task_queue,
    )
    return await handle.result()


async def test_a_definition_that_offers_itself_as_a_tool_stops_at_the_default_depth(
    client, endpoints, fake_llm, tmp_path
):
    (tmp_path / "deeper.yaml").write_text(SELF_AS_TOOL)
    loaded = load_text_bundle(SELF_AS_TOOL, "deeper.yaml", tmp_path / "deeper.yaml")

    def recurse(request: Request) -> str | list[ToolUse]:
        if not request.tool_results:
            return [ToolUse("Deeper", {})]
        return "below: " + request.tool_results[0]

    fake_llm.reply = recurse
    async with new_worker(client, endpoints) as worker:
        result = await run(client, worker, loaded)
    first_turns = [r for r in fake_llm.requests if not r.tool_results]
    assert len(first_turns) == 5  # the top-level run and 4 levels of child runs, no more
    text = result.outputs["answer"]
    assert "runs may nest at most 4 deep below the top-level run (max_depth)" in text
    assert "this run is 4 deep" in text


async def test_a_model_calling_itself_several_times_a_turn_grows_a_bounded_tree(
    client, endpoints, fake_llm, tmp_path
):
    """2 calls a turn, every turn: with max_tool_calls 3 and max_depth 2 each answer starts
    at most 3 child runs, 2 levels down: 3 + 9 child runs, then every run answers."""
    text = SELF_AS_TOOL.replace(
        "      outputs:", "      max_tool_calls: 3\n      max_depth: 2\n      outputs:"
    )
    (tmp_path / "deeper.yaml").write_text(text)
    loaded = load_text_bundle(text, "deeper.yaml", tmp_path / "deeper.yaml")

    def twice(request: Request) -> str | list[ToolUse]:
        if any("max_tool_calls" in result for result in request.tool_results):
            return "enough"
        return [ToolUse("Deeper", {}), ToolUse("Deeper", {})]

    fake_llm.reply = twice
    async with new_worker(client, endpoints) as worker:
        result = await run(client, worker, loaded)
    first_turns = [r for r in fake_llm.requests if not r.tool_results]
    assert len(first_turns) == 1 + 3 + 9
    assert result.outputs["answer"] == "enough"


RECURSIVE_STEP = """
workflow:
  name: Nest
  steps:
    - {id: again, type: workflow, definition: nest.yaml, max_depth: 10}
"""

TOP = """
workflow:
  name: Top
  steps:
    - {id: start, type: workflow, definition: nest.yaml, max_depth: 2}
"""


async def test_a_workflow_step_past_max_depth_fails_with_its_reason_and_children_keep_the_limit(
    client, endpoints, tmp_path
):
    """The top step allows 2 levels; the child's own `max_depth: 10` cannot raise that."""
    (tmp_path / "nest.yaml").write_text(RECURSIVE_STEP)
    loaded = load_text_bundle(TOP, "top.yaml", tmp_path / "top.yaml")
    async with new_worker(client, endpoints) as worker:
        with pytest.raises(WorkflowFailureError) as failed:
            await run(client, worker, loaded)
    chain, error = [], failed.value.cause
    while error is not None:
        chain.append(str(error))
        error = error.__cause__
    reasons = " | ".join(chain)
    assert "step 'again': child run not started: runs may nest at most 2 deep" in reasons
    assert "this run is 2 deep" in reasons


async def test_a_steps_tool_calls_stop_at_max_tool_calls_across_turns(
    client, endpoints, fake_llm, tmp_path
):
    orders = Orders()
    actions = {"lookup_order": ActionSpec("lookup_order", OrderParams, orders.lookup)}
    text = """
workflow:
  name: busy
  steps:
    - id: answer
      type: llm_call
      model: openai/gpt-4o
      prompt: "Look up every order"
      tools: [{action: lookup_order}]
      max_tool_calls: 5
      max_turns: 10
"""

    def greedy(request: Request) -> str | list[ToolUse]:
        refused = [r for r in request.tool_results if "no more tool calls" in r]
        if refused:
            return "stopped: " + refused[0]
        return [ToolUse("lookup_order", {"order_id": "A-1"})] * 2

    fake_llm.reply = greedy
    loaded = load_text_bundle(text, "busy.yaml", tmp_path / "busy.yaml", params_models(actions))
    async with new_worker(client, endpoints, actions=actions) as worker:
        result = await run(client, worker, loaded)
    assert len(orders.calls) == 5  # turns 1 and 2 ran 2 calls each, turn 3 one of its two
    answer = result.steps["answer"].outputs["text"]
    assert "no more tool calls: this step allows 5 (max_tool_calls)" in answer
    assert len(fake_llm.requests) == 4  # turns 1-3 made 6 calls; turn 4 answered


WRITER = """
workflow:
  name: writer
  steps:
    - id: answer
      type: llm_call
      model: openai/gpt-4o
      prompt: "Keep a note"
      tools:
        - action: save_to_file
        - action: database_insert
          params: {{table: notes}}
{offer}
"""


def offered_params(request: Request) -> dict[str, list[str]]:
    """Each offered tool's argument names (OpenAI's wire format)."""
    functions = [tool["function"] for tool in request.body["tools"]]
    return {f["name"]: list(f["parameters"]["properties"]) for f in functions}


async def test_a_model_cannot_set_operator_params_the_definition_does_not_offer(
    client, endpoints, fake_llm, tmp_path
):
    calls = [
        ToolUse("save_to_file", {"filename": "a.txt", "data": "x", "shared": True}),
        ToolUse("database_insert", {"data": {"n": 1}, "connection": "other"}),
        ToolUse("database_insert", {"data": {"n": 2}, "table": "users"}),  # fixed: ignored
        ToolUse("save_to_file", {"filename": "b.txt", "data": "y"}),
    ]
    fake_llm.reply = lambda request: (
        calls if not request.tool_results else "Done: " + " | ".join(request.tool_results)
    )
    actions = actions_for(tmp_path)
    loaded = load_text_bundle(
        WRITER.format(offer=""), "w.yaml", tmp_path / "w.yaml", params_models(actions)
    )
    async with new_worker(client, endpoints, actions=actions) as worker:
        result = await run(client, worker, loaded)
    offered = offered_params(fake_llm.requests[0])
    assert offered == {"save_to_file": ["filename", "data", "path"], "database_insert": ["data"]}
    results = fake_llm.requests[1].tool_results
    assert results[0].startswith("save_to_file does not let the model set 'shared'")
    assert results[1].startswith("database_insert does not let the model set 'connection'")
    assert '"table": "notes"' in results[2] and '"path":' in results[3]
    assert not (tmp_path / "out" / "shared").exists()
    assert result.steps["answer"].status == "completed"
    with sqlite3.connect(tmp_path / "db.sqlite") as db:
        tables = {row[0] for row in db.execute("select name from sqlite_master")}
    assert "notes" in tables and "users" not in tables


async def test_a_tool_entry_may_offer_an_operator_param_to_the_model(
    client, endpoints, fake_llm, tmp_path
):
    fake_llm.reply = lambda request: (
        [ToolUse("save_to_file", {"filename": "a.txt", "data": "x", "shared": True})]
        if not request.tool_results
        else "Done: " + request.tool_results[0]
    )
    actions = actions_for(tmp_path)
    offer = "          offer: [shared]"
    text = WRITER.format(offer="").replace(
        "        - action: save_to_file\n", f"        - action: save_to_file\n{offer}\n"
    )
    loaded = load_text_bundle(text, "w.yaml", tmp_path / "w.yaml", params_models(actions))
    async with new_worker(client, endpoints, actions=actions) as worker:
        await run(client, worker, loaded)
    assert "shared" in offered_params(fake_llm.requests[0])["save_to_file"]
    assert (tmp_path / "out" / "shared" / "a.txt").read_text() == "x"


def test_only_operator_level_params_can_be_offered(tmp_path):
    text = WRITER.format(offer="").replace(
        "        - action: save_to_file\n",
        "        - action: save_to_file\n          offer: [path]\n",
    )
    with pytest.raises(DefinitionError) as refused:
        load_text_bundle(text, "w.yaml", tmp_path / "w.yaml")
    assert (
        "w.yaml:11:19: 'path' is not an operator-level param of save_to_file (those: shared)"
        in (str(refused.value))
    )


def test_a_required_operator_param_must_be_fixed_or_offered(tmp_path):
    """database_insert needs `table`, which the model may not set: the tool would be useless."""
    text = WRITER.format(offer="").replace("          params: {table: notes}\n", "")
    with pytest.raises(DefinitionError) as refused:
        load_text_bundle(text, "w.yaml", tmp_path / "w.yaml")
    assert "database_insert needs 'table', which a model may not set: fix it in 'params' or " in (
        str(refused.value)
    )
