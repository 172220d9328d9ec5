"""Hostile input ends a run with a reason; it never leaves a workflow task failing in a loop."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle

from tests.conftest import definition, new_worker, start
from workflows.contracts import RunInput, RunResult, RunStatus
from workflows.signal_buffer import MAX_BUFFERED_SIGNALS, MAX_SIGNAL_BYTES
from workflows.template_limits import MAX_OPERATIONS, MAX_SIZE


def one_set(value: str) -> str:
    return (
        f"workflow:\n  name: bomb\n  steps:\n    - {{id: s, type: set, values: {{v: {value!r}}}}}\n"
    )


async def ends_with(client: Client, text: str) -> tuple[str, WorkflowHandle]:
    """Run a definition that must fail; the failure's message and the handle."""
    async with new_worker(client, {}) as worker:
        handle = await start(client, worker, RunInput(definition=definition(text)))
        with pytest.raises(WorkflowFailureError) as caught:
            await asyncio.wait_for(handle.result(), timeout=60)
    return str(caught.value.cause), handle


async def failed_workflow_tasks(handle: WorkflowHandle) -> int:
    history = await handle.fetch_history()
    return sum(e.HasField("workflow_task_failed_event_attributes") for e in history.events)


LOOP = "{% for i in range(1000) %}"
NESTED = LOOP * 3 + "{% endfor %}" * 3


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("{{ ('a' * 1000000000) | length }}", f"exceeded {MAX_SIZE} characters"),
        (NESTED, f"exceeded {MAX_OPERATIONS} operations"),
        ("{{ lipsum(100000) }}", "exceeded 100 paragraphs in lipsum()"),
        (
            "{% set ns = namespace(s='ab') %}{% for i in range(40) %}"
            "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}",
            f"exceeded {MAX_SIZE} characters",
        ),
    ],
    ids=["repeat", "nested-loops", "lipsum", "doubling"],
)
async def test_a_template_bomb_fails_its_step_without_stalling(client, value, expected):
    message, handle = await ends_with(client, one_set(value))
    assert (
        "TemplateError: step 's', field 'values.v': template exceeded" in message
        and expected in message
    )
    assert await failed_workflow_tasks(handle) == 0


async def test_a_huge_for_each_fails_with_the_limit(client):
    text = (
        "workflow:\n  name: many\n  steps:\n"
        '    - {id: s, type: set, for_each: "{{ range(100000) | list }}", values: {v: 1}}\n'
    )
    message, handle = await ends_with(client, text)
    assert "for_each gave 100000 items, over the limit of 10000" in message
    assert await failed_workflow_tasks(handle) == 0


async def test_heavy_but_legitimate_templates_take_breaks_and_finish(client):
    """Each item spends most of a render's budget; the run yields between them instead of
    tripping the deadlock detector."""
    heavy = "{% for i in range(300) %}{% for j in range(500) %}{% endfor %}{% endfor %}{{ item }}"
    text = (
        "workflow:\n  name: heavy\n  steps:\n"
        '    - {id: s, type: set, for_each: "{{ range(90) | list }}",\n'
        f'       values: {{v: "{heavy}"}}}}\n'
    )
    async with new_worker(client, {}) as worker:
        handle = await start(client, worker, RunInput(definition=definition(text)))
        result = await asyncio.wait_for(handle.result(), timeout=60)
    assert result.outputs["v"] == [str(i) for i in range(90)]
    assert await failed_workflow_tasks(handle) == 0


async def start_raw(client: Client, worker, raw: object) -> WorkflowHandle:
    """What the Temporal CLI or HTTP API can send: any JSON at all."""
    return await client.start_workflow(
        "YamlWorkflow", raw, id=f"raw-{uuid.uuid4()}", task_queue=worker.task_queue
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"definition": {"workflow": {"name": "x", "steps": []}}}, "definition.workflow.steps"),
        (
            {"definition": {"workflow": {"name": "x", "steps": [{"id": "a", "type": "nope"}]}}},
            "definition.workflow.steps.0",
        ),
        ("just a string", "input"),
    ],
    ids=["no-steps", "unknown-step-type", "bare-string"],
)
async def test_input_that_does_not_decode_fails_the_run_at_once(client, raw, expected):
    async with new_worker(client, {}) as worker:
        handle = await start_raw(client, worker, raw)
        with pytest.raises(WorkflowFailureError) as caught:
            await asyncio.wait_for(handle.result(), timeout=60)
    message = str(caught.value.cause)
    assert "the run's input is not a valid RunInput" in message and expected in message
    assert await failed_workflow_tasks(handle) == 0


async def test_an_unregistered_action_fails_at_once(client):
    raw = {
        "definition": {
            "workflow": {
                "name": "x",
                "steps": [{"id": "a", "type": "action", "action": "nope", "params": {}}],
            }
        }
    }
    async with new_worker(client, {}) as worker:
        handle = await start_raw(client, worker, raw)
        with pytest.raises(WorkflowFailureError) as caught:
            await asyncio.wait_for(handle.result(), timeout=60)
    message = str(caught.value.cause)
    assert "after 1 attempt(s)" in message and "no action 'nope' is registered" in message


WAITS = """
workflow:
  name: waits
  steps:
    - {id: ok, type: wait_for_signal, signal: approve, outputs: [answer]}
"""


async def test_stray_oversized_and_undecodable_signals_are_dropped_and_counted(client):
    async with new_worker(client, {}) as worker:
        handle = await start(client, worker, RunInput(definition=definition(WAITS)))
        for index in range(MAX_BUFFERED_SIGNALS + 20):
            await handle.signal("spam", {"n": index})
        await handle.signal("approve", {"answer": "x" * (MAX_SIGNAL_BYTES + 1)})
        status = await handle.query("status", result_type=RunStatus)
        assert status.dropped_signals == MAX_BUFFERED_SIGNALS + 21
        await handle.signal("approve", {"answer": "yes"})
        result = await asyncio.wait_for(handle.result(), timeout=30)
    assert result.outputs["answer"] == "yes"


async def test_a_flood_before_the_run_reads_its_definition_does_not_crowd_out_the_approval(
    client,
):
    """Signals sent before any worker picks the run up arrive with its start, before it
    knows which names it waits for: the stray flood gives up places, the approval keeps one."""
    queue = f"test-{uuid.uuid4()}"
    handle = await client.start_workflow(
        "YamlWorkflow",
        RunInput(definition=definition(WAITS)),
        id=queue,
        task_queue=queue,
        result_type=RunResult,
    )
    for index in range(MAX_BUFFERED_SIGNALS * 3):
        await handle.signal("spam", {"n": index})
    await handle.signal("approve", {"answer": "yes"})
    async with new_worker(client, {}, task_queue=queue):
        result = await asyncio.wait_for(handle.result(), timeout=30)
        status = await handle.query("status", result_type=RunStatus)
    assert result.outputs["answer"] == "yes"
    assert status.dropped_signals == MAX_BUFFERED_SIGNALS * 3


def _raw(*steps: dict) -> dict:
    return {"definition": {"workflow": {"name": "x", "steps": list(steps)}}}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            _raw(
                {"id": "a", "type": "set", "values": {"x": 1}, "depends_on": ["b"]},
                {"id": "b", "type": "set", "values": {"y": 1}, "depends_on": ["a"]},
            ),
            "dependency cycle",
        ),
        (_raw({"id": "a", "type": "set", "values": {"x": "{{ nowhere }}"}}), "'nowhere'"),
        (_raw({"id": "a", "type": "set", "values": {"x": "{{ 1 / 0 }}"}}), "ZeroDivisionError"),
        (
            _raw({"id": "a", "type": "set", "values": {"x": 1}, "depends_on": ["zz"]}),
            "unknown step(s) zz",
        ),
        (
            _raw({"id": "a", "type": "llm_call", "model": "nope", "prompt": "hi"}),
            "cannot tell which provider",
        ),
    ],
    ids=["cycle", "unknown-name", "division", "unknown-dependency", "unknown-model"],
)
async def test_a_definition_the_starter_would_refuse_fails_the_run_with_the_reason(
    client, raw, expected
):
    async with new_worker(client, {}) as worker:
        handle = await start_raw(client, worker, raw)
        with pytest.raises(WorkflowFailureError) as caught:
            await asyncio.wait_for(handle.result(), timeout=60)
    assert expected in str(caught.value.cause)
    assert await failed_workflow_tasks(handle) == 0
