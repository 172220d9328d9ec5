"""What the Temporal UI shows of a run: each for_each item's activity is told apart by its
index, and the run's input holds what the file said, without a page of nulls."""

from __future__ import annotations

import json

from google.protobuf.json_format import MessageToDict

from tests.conftest import definition, new_worker, start
from workflows.contracts import RunInput

FAN_OUT = """
workflow:
  name: labels
  steps:
    - id: tagline
      type: llm_call
      model: mock
      for_each: "{{ ['a', 'b', 'c'] }}"
      prompt: "Tagline for {{ item }}"
"""


async def test_for_each_items_are_told_apart_and_the_input_has_no_nulls(client):
    async with new_worker(client, {}) as worker:
        handle = await start(client, worker, RunInput(definition=definition(FAN_OUT)))
        await handle.result()
        history = await handle.fetch_history()
    summaries = []
    started_input = None
    for event in history.events:
        if event.HasField("activity_task_scheduled_event_attributes"):
            payload = event.user_metadata.summary
            summaries.append(json.loads(payload.data))
        if event.HasField("workflow_execution_started_event_attributes"):
            [payload] = event.workflow_execution_started_event_attributes.input.payloads
            started_input = json.loads(payload.data)
    assert sorted(summaries) == [f"tagline/{i}: mock/mock" for i in range(3)]
    step = started_input["definition"]["workflow"]["steps"][0]
    assert None not in step.values() and "system" not in step and "temperature" not in step
    assert MessageToDict(history.events[0])  # the history itself is intact
