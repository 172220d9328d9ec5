"""Large data and long runs: replies over Temporal's payload limit, thousands of steps/items."""

from __future__ import annotations

import pytest

from activities.endpoints import Endpoint
from tests.conftest import definition, new_worker, run_offline, start
from tests.fake_llm import FakeLlmServer
from tests.test_external_storage import local_storage, storage_client
from workflows.contracts import RunInput, RunResult

HUGE = 9 * 1024 * 1024
"""Over the reply cap (8 MB): payloads this big leave history for external storage."""


async def test_a_reply_over_the_payload_limit_is_cut_with_a_marker(client, tmp_path):
    text = """
workflow:
  name: Huge
  steps:
    - {id: big, type: llm_call, model: gpt-4o-mini, prompt: "everything", outputs: [reply]}
"""
    stored = storage_client(client, local_storage(tmp_path))
    with FakeLlmServer(reply=lambda request: "x" * HUGE) as llm:
        endpoints = {"openai": Endpoint(api_key="k", base_url=llm.openai_url)}
        async with new_worker(stored, endpoints) as worker:
            handle = await start(stored, worker, RunInput(definition=definition(text)))
            result: RunResult = await handle.result()
    reply = result.outputs["reply"]
    assert reply.endswith("[truncated: reply over 8000000 bytes]")
    assert reply.startswith("x" * 8_000_000) and len(reply) < 8_100_000


def chain(steps: int) -> str:
    lines = ["workflow:", "  name: Long", "  steps:", "    - {id: s0, type: set, values: {v0: 0}}"]
    lines += [
        f'    - {{id: s{i}, type: set, values: {{v{i}: "{{{{ v{i - 1} + 1 }}}}"}}}}'
        for i in range(1, steps)
    ]
    return "\n".join(lines) + "\n"


@pytest.mark.timeout(600)
async def test_two_thousand_steps_complete(client):
    _, result = await run_offline(client, chain(2000))
    assert result.outputs["v1999"] == 1999


@pytest.mark.timeout(900)
async def test_for_each_over_five_thousand_items_completes(client):
    text = """
workflow:
  name: Wide
  steps:
    - id: each
      type: llm_call
      model: mock
      for_each: "{{ range(5000) | list }}"
      concurrency: 100
      prompt: "item {{ item }}"
      outputs: [answer]
"""
    _, result = await run_offline(client, text)
    answers = result.outputs["answer"]
    assert len(answers) == 5000 and "item 4999" in answers[-1]


async def test_thousands_of_in_workflow_items_stay_under_the_deadlock_limit(client):
    text = """
workflow:
  name: WideSet
  steps:
    - id: each
      type: set
      for_each: "{{ range(3000) | list }}"
      values: {double: "{{ item * 2 }}"}
"""
    _, result = await run_offline(client, text)
    assert result.outputs["double"][-1] == 5998


async def test_two_thousand_skipped_steps_stay_under_the_deadlock_limit(client):
    lines = ["workflow:", "  name: Skips", "  variables: {go: false}", "  steps:"]
    lines += [
        f'    - {{id: s{i}, type: set, when: "{{{{ go }}}}", values: {{v{i}: 1}}}}'
        for i in range(2000)
    ]
    handle, result = await run_offline(client, "\n".join(lines))
    history = await handle.fetch_history()
    assert {step.status for step in result.steps.values()} == {"skipped"}
    failed_tasks = [
        e for e in history.events if e.HasField("workflow_task_failed_event_attributes")
    ]
    assert failed_tasks == []  # no workflow task ran into the deadlock detector
