"""Definitions at Temporal's edges: what validates runs to its end or fails with a reason,
and what would strand a run is refused by validation with its line."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from temporalio.client import WorkflowFailureError

from activities.definitions import MAX_DEFINITION_BYTES
from activities.load_definition import DefinitionActivities
from engine.rest import create_app
from engine.rest_auth import ApiConfig
from tests.conftest import definition, new_worker, run_offline
from tests.test_hostile_input import failed_workflow_tasks
from tests.test_rest_api import CI, TOKENS, live, settings_for
from workflows.contracts import LoadDefinitionInput, RunInput
from workflows.definition import MAX_STEPS
from workflows.errors import DefinitionError
from workflows.interpreter import YamlWorkflow
from workflows.validation import load_definition


def flat_chain(steps: int) -> str:
    lines = ["workflow:", "  name: Flat", "  steps:"]
    lines += [f"    - {{id: s{i}, type: set, values: {{v{i}: {i}}}}}" for i in range(steps)]
    return "\n".join(lines) + "\n"


@pytest.mark.timeout(600)
async def test_eleven_thousand_set_steps_complete(client):
    handle, result = await run_offline(client, flat_chain(11_000))
    assert result.outputs["v10999"] == 10999
    assert await failed_workflow_tasks(handle) == 0


def test_a_file_over_the_step_limit_is_refused_at_the_first_step_too_many():
    with pytest.raises(DefinitionError) as caught:
        load_definition(flat_chain(MAX_STEPS + 1), "f.yaml")
    [problem] = caught.value.problems
    assert (problem.line, problem.col) == (MAX_STEPS + 4, 7)
    assert f"more than {MAX_STEPS:,} steps ({MAX_STEPS + 1:,})" in problem.message


def test_sixteen_thousand_steps_validate_in_linear_time():
    """A 16,000-step file once took 45 s; now the checks are linear. Not a timing assertion
    on the machine's speed: 16,000 steps must cost at most ~8x 2,000 (quadratic: 64x)."""
    small, large = flat_chain(2_000), flat_chain(16_000)

    def cost(text: str) -> float:
        started = time.process_time()
        with pytest.raises(DefinitionError):  # 16,000 is over the step limit: still checked
            load_definition(text + "  bad: 1\n", "f.yaml")
        return time.process_time() - started

    assert cost(large) < 16 * cost(small) + 0.5


CHILD = definition(
    """
workflow:
  name: Child
  steps:
    - {id: one, type: set, values: {x: 1}}
"""
)
PARENT = definition(
    """
workflow:
  name: Parent
  steps:
    - {id: nested_run, type: workflow, definition: child.yaml}
"""
)


async def test_a_child_id_over_temporals_limit_fails_the_step_with_the_reason(client):
    async with new_worker(client, {}) as worker:
        handle = await client.start_workflow(
            YamlWorkflow.run,
            RunInput(definition=PARENT, children={"child.yaml": CHILD}),
            id="r" * 990,
            task_queue=worker.task_queue,
        )
        with pytest.raises(WorkflowFailureError) as caught:
            await asyncio.wait_for(handle.result(), timeout=60)
    assert "child run's id would be 1001 characters, over Temporal's limit of 1000" in str(
        caught.value.cause
    )
    assert await failed_workflow_tasks(handle) == 0


def heaviest_definition() -> str:
    """Near the largest text the API accepts (1,000,000 characters), every template one
    that needs Jinja's parser: as slow to validate as a definition gets."""
    lines = ["workflow:", "  name: Heavy", "  steps:", "    - {id: s0, type: set, values: {v0: 0}}"]
    lines += [
        f"    - {{id: s{i}, type: set, values: {{v{i}: '{{{{ v{i - 1} | string | trim }}}}'}}}}"
        for i in range(1, MAX_STEPS)
    ]
    text = "\n".join(lines) + "\n"
    assert 900_000 < len(text) <= MAX_DEFINITION_BYTES
    return text


async def test_health_answers_while_the_largest_definition_is_validated():
    """A liveness check, not a timing one: /health is asked, and answers, while the server
    is in the middle of validating (the API and this test share one event loop)."""
    settings = settings_for("localhost:1", "unused")
    app = create_app(settings, ApiConfig(tokens=TOKENS, rate_per_minute=100_000))
    loader = app.state.definitions
    async with live(app) as url, httpx.AsyncClient(base_url=url, timeout=120) as http:
        body = {"yaml": heaviest_definition()}
        validating = asyncio.create_task(http.post("/workflows/validate", json=body, headers=CI))
        while loader.in_progress == 0:
            assert not validating.done(), validating.result().text
            await asyncio.sleep(0.01)
        health = await http.get("/health")
        answered_during = loader.in_progress == 1
        validated = await validating
    assert health.status_code == 200
    assert answered_during, "/health waited for the validation to end"
    assert validated.json() == {"valid": True, "workflow_name": "Heavy", "problems": []}


@pytest.mark.timeout(900)
async def test_three_thousand_items_at_the_widest_concurrency_side_by_side_complete(client):
    """Three steps of 1,000 model calls each at concurrency 1,000 would have 3,000 activities
    pending, past the 2,000 Temporal allows a run: the run holds at most 1,000 under way."""
    wide = """
    - id: {name}
      type: llm_call
      depends_on: []
      model: mock
      for_each: "{{{{ range(1000) | list }}}}"
      concurrency: 1000
      prompt: "item {{{{ item }}}}"
      outputs: [{name}_answer]
"""
    text = "workflow:\n  name: Wide\n  steps:" + "".join(wide.format(name=n) for n in "abc")
    handle, result = await run_offline(client, text)
    assert [len(result.outputs[f"{n}_answer"]) for n in "abc"] == [1000, 1000, 1000]
    assert await failed_workflow_tasks(handle) == 0


async def test_items_started_at_once_take_a_break_every_200_starts(client):
    """A wide fan-out's first workflow task once started every item at once; on a busy worker
    1,000 starts passed Temporal's 2 s deadlock limit. Now a break (a local activity) ends
    the task after STARTS_PER_BREAK starts: 450 items at concurrency 450 take two."""
    text = """
workflow:
  name: Wide
  steps:
    - id: each
      type: llm_call
      model: mock
      for_each: "{{ range(450) | list }}"
      concurrency: 450
      prompt: "item {{ item }}"
      outputs: [answer]
"""
    handle, result = await run_offline(client, text)
    assert len(result.outputs["answer"]) == 450
    history = await handle.fetch_history()
    breaks = [
        e for e in history.events
        if e.HasField("marker_recorded_event_attributes")
        and e.marker_recorded_event_attributes.marker_name == "core_local_activity"
    ]  # fmt: skip
    assert len(breaks) == 2


async def test_the_worker_loads_a_large_file_without_holding_its_event_loop(tmp_path):
    """A run started by file name is validated by the load_definition activity: on a thread,
    so the worker's event loop (every other run's tasks) goes on meanwhile."""
    (tmp_path / "heavy.yaml").write_text(heaviest_definition())
    loading = asyncio.create_task(
        DefinitionActivities(tmp_path).load_definition(LoadDefinitionInput(path="heavy.yaml"))
    )
    turns = 0
    while not loading.done():
        turns += 1
        await asyncio.sleep(0.01)
    assert (await loading).definition.workflow.name == "Heavy"
    assert turns > 1, "the event loop waited for the whole validation"
