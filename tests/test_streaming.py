"""Live streaming: while a call runs, its reply reaches the client API's status (and so
`starter.py run` and the REST API's events) piece by piece, through the call's heartbeats;
the run's history keeps the whole reply once, as without streaming."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import uuid

import pytest
from google.protobuf import json_format

from engine.client import EngineClient
from engine.progress import StreamedPieces
from engine.settings import Settings
from tests.conftest import new_worker

REPLY = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima"
ONE_CALL = """
workflow:
  name: streamed
  steps:
    - {{id: say, type: llm_call, model: {model}, prompt: "Spell the alphabet"}}
"""


def occurrences(history, text: str) -> int:
    """How often `text` is in the history's payloads (decoded)."""
    found = 0

    def walk(value):
        nonlocal found
        if isinstance(value, dict):
            for key, item in value.items():
                if key == "data" and isinstance(item, str):
                    found += base64.b64decode(item).decode(errors="ignore").count(text)
                else:
                    walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    for event in history.events:
        walk(json_format.MessageToDict(event))
    return found


@pytest.mark.parametrize("model", ["openai/gpt-4o", "anthropic/claude-haiku-4-5"])
async def test_a_reply_arrives_in_pieces_and_history_holds_it_once(
    client, endpoints, fake_llm, model
):
    fake_llm.reply = lambda request: REPLY
    fake_llm.stream_pieces, fake_llm.stream_delay = 6, 0.4
    async with new_worker(client, endpoints) as worker:
        settings = dataclasses.replace(
            Settings.from_env({}),
            address=client.service_client.config.target_host,
            task_queue=worker.task_queue,
        )
        engine = EngineClient(client, settings, start_worker=False)
        text = ONE_CALL.format(model=model)
        started = await engine.start(engine.load_yaml(text), execution_id=f"s-{uuid.uuid4()}")
        result = asyncio.ensure_future(engine.result(started.execution_id))
        pieces, seen = StreamedPieces(), []
        while not result.done():
            status = await engine.status(started.execution_id)
            if new := pieces.new_text(status):
                seen.append(new)
            await asyncio.wait({result}, timeout=0.1)
        done = result.result()
    assert done.steps["say"].outputs["text"] == REPLY
    assert len(seen) >= 2 and REPLY.startswith("".join(seen))  # pieces, in order, before the end
    assert fake_llm.requests[0].body["stream"] is True
    history = await client.get_workflow_handle(started.execution_id).fetch_history()
    # the activity's result and the run's result: what a run without streaming holds
    assert occurrences(history, "foxtrot golf") == 2


def test_the_rest_apis_event_stream_sends_each_new_piece_once():
    from engine.client_models import ExecutionStatus, StreamedText
    from engine.rest_events import _text_events

    def status(text: str, offset: int = 0) -> ExecutionStatus:
        piece = StreamedText(activity_id="1", step="say", offset=offset, text=text)
        return ExecutionStatus(execution_id="r", execution_status="running", streaming=[piece])

    shown: dict[str, int] = {}
    first = _text_events(status("alpha "), shown)
    again = _text_events(status("alpha bravo "), shown)
    tail = _text_events(status("bravo charlie", offset=6), shown)  # only the tail is kept
    assert [event.text for _, event in first + again + tail] == ["alpha ", "bravo ", "charlie"]
    assert {name for name, _ in first + again + tail} == {"text"}
