"""Runs longer than Temporal's history allows continue as new, losing and repeating nothing:
finished steps and for_each items carry over, and so do early signals and the start time.

A dev server of its own suggests continuing as new after 100 events and refuses histories
over 400, so a run of about 1,000 events must continue several times to finish at all.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest_asyncio
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from activities.endpoints import Endpoint
from engine.local_stack import TUNED_SERVER_FLAGS, temporal_cli
from tests.conftest import definition, new_worker, start
from tests.examples import ITEMS, LONG, SMALL_HISTORIES
from tests.fake_llm import FakeLlmServer, Request
from tests.test_actions import actions_for
from workflows import search_attributes
from workflows.contracts import RunInput, RunResult
from workflows.schedule import _same_item


@pytest_asyncio.fixture(scope="module")
async def small_history_client() -> AsyncIterator[Client]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli(),
        data_converter=pydantic_data_converter,
        dev_server_extra_args=[*TUNED_SERVER_FLAGS, *SMALL_HISTORIES],
        search_attributes=search_attributes.ALL,
    )
    yield env.client
    await env.shutdown()


def echo(request: Request) -> str:
    return request.body["messages"][-1]["content"].upper()


async def test_a_run_past_the_history_limit_continues_as_new_and_pays_each_call_once(
    small_history_client: Client,
):
    client = small_history_client
    with FakeLlmServer(reply=echo) as llm:
        endpoints = {"openai": Endpoint(api_key="k", base_url=llm.openai_url)}
        async with new_worker(client, endpoints) as worker:
            handle = await start(client, worker, RunInput(definition=definition(LONG)))
            await handle.signal("approve", {"ok": "yes"})  # long before the step waits
            result: RunResult = await handle.result()
        first = await client.get_workflow_handle(handle.id, run_id=handle.result_run_id).describe()

    prompts = Counter(request.body["messages"][-1]["content"] for request in llm.requests)
    assert len(prompts) == ITEMS + 2 and set(prompts.values()) == {1}  # each call paid once
    assert result.outputs["answer"] == [f"ITEM {i}" for i in range(ITEMS)]
    assert result.outputs["outro"] == f"OUTRO AFTER {ITEMS} AND YES"
    assert first.status == WorkflowExecutionStatus.CONTINUED_AS_NEW
    started = datetime.fromisoformat(result.outputs["started"])
    assert first.start_time <= started < first.close_time  # the first run's, carried over
    assert result.steps["each"].attempts == ITEMS
    asked = sum(len(prompt.split()) for prompt in prompts)  # the fake counts words as tokens
    assert result.usage.input_tokens == asked


def test_a_carried_item_is_the_same_item_after_the_wire():
    """A `dictsort` item is a tuple in the run and a list in the next run's input: still
    the same item, so it is not paid for again."""
    assert _same_item([["a", 1]], [("a", 1)])
    assert not _same_item(["a", 1], ["a", 2])


WAITS = """
workflow:
  name: waits
  steps:
    - {id: ok, type: wait_for_signal, signal: approve, outputs: [answer]}
"""


async def test_a_run_waiting_for_a_signal_continues_as_new_while_stray_signals_pile_up(
    small_history_client: Client,
):
    """Each stray signal is an event even when the run drops it: past the server's limit
    (400 here, 10,000 signals on a stock server) a waiting run would be refused its approval."""
    client = small_history_client
    async with new_worker(client, {}) as worker:
        handle = await start(client, worker, RunInput(definition=definition(WAITS)))
        for index in range(500):
            await handle.signal("spam", {"n": index})
            if index % 50 == 49:  # keep pace with the worker, as senders over time would:
                await handle.query("status")  # a flood faster than it reads hits 400 first
        await handle.signal("approve", {"answer": "yes"})
        result: RunResult = await handle.result()
    assert result.outputs["answer"] == "yes"
    latest = await client.get_workflow_handle(handle.id).describe()
    assert latest.run_id != handle.first_execution_run_id  # it continued as new


SAVES = """
workflow:
  name: saves
  steps:
    - id: each
      type: action
      action: save_to_file
      for_each: "{{ range(60) | list }}"
      concurrency: 4
      params: {filename: "item-{{ item }}.txt", data: "{{ item }}"}
    - id: last
      type: action
      action: save_to_file
      params: {filename: last.txt, data: done}
"""


async def test_a_continued_run_keeps_its_run_folder_and_its_keys(
    small_history_client: Client, tmp_path: Path
):
    """Continue-as-new keeps the chain's first run id: the run after it is the same run, so
    it writes to the same folder (not a reused id's `@<first run id>` one)."""
    client = small_history_client
    async with new_worker(client, {}, actions=actions_for(tmp_path)) as worker:
        handle = await start(client, worker, RunInput(definition=definition(SAVES)))
        await handle.result()
    first = await client.get_workflow_handle(handle.id, run_id=handle.result_run_id).describe()
    assert first.status == WorkflowExecutionStatus.CONTINUED_AS_NEW
    runs = tmp_path / "out" / "runs"
    assert sorted(p.name for p in runs.iterdir()) == [".owners", handle.id]
    names = {p.name for p in (runs / handle.id).iterdir()}
    assert names == {f"item-{i}.txt" for i in range(60)} | {"last.txt"}
    assert (runs / ".owners" / handle.id).read_text() == handle.result_run_id
