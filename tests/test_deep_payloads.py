"""Nothing a run receives can strand it: a value too deep (or too big) for Temporal's wire is
refused where it enters, with one line, and never leaves a workflow task failing in a loop.

Temporal's JSON reader stops at 200 levels: before the checks in workflows/payloads.py, each
of these ended in "Failed decoding arguments" on every workflow task, forever."""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from pydantic import BaseModel
from temporalio.client import Client, WorkflowFailureError, WorkflowUpdateFailedError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter

from activities.actions import builtin_actions
from activities.database import DatabaseActions
from activities.email import EmailActions
from activities.endpoints import SmtpSettings
from activities.files import FileActions
from activities.http import AddressGuard, HttpActions
from activities.registry import ActionSpec
from engine.client import EngineClient
from engine.rest import create_app
from engine.rest_auth import ApiConfig
from tests.conftest import definition, new_worker, run_offline, start
from tests.test_rest_api import TOKENS, asgi, factory, settings_for
from workflows.contracts import ActionInput, RunInput, RunStatus
from workflows.errors import DefinitionError, UsageError, VariablesError
from workflows.payloads import (
    HARD_DEPTH,
    INLINE_MAX_BYTES,
    MAX_DEPTH,
    PayloadRefused,
    bounded_data_converter,
    json_depth,
)
from workflows.validation import ACTION_PARAMS, load_definition, read_text_value


def nested(depth: int) -> Any:
    """A value `depth` levels deep: lists in lists, a string at the bottom."""
    value: Any = "bottom"
    for _ in range(depth):
        value = [value]
    return value


async def failed_workflow_tasks(handle: Any) -> int:
    history = await handle.fetch_history()
    return sum(e.HasField("workflow_task_failed_event_attributes") for e in history.events)


def raw_client(client: Client) -> Client:
    """What Temporal's CLI or another SDK sends: JSON with no depth check at all."""
    plain = DataConverter.default  # json.dumps: any depth Python's recursion allows
    return Client(client.service_client, namespace=client.namespace, data_converter=plain)


async def failure_of(handle: Any) -> str:
    with pytest.raises(WorkflowFailureError) as caught:
        await asyncio.wait_for(handle.result(), timeout=30)
    return str(caught.value.cause)


def test_depth_is_counted_outside_strings_and_escapes():
    text = json.dumps({"a": nested(3), "s": '[[[{{ "\\"[[['}).encode()
    assert json_depth(text) == 4
    assert json_depth(b'"just [[[ text"') == 0
    assert json_depth(json.dumps(nested(150)).encode()) == 150


def test_the_converter_refuses_both_ways_with_one_line():
    converter = bounded_data_converter().payload_converter
    with pytest.raises(PayloadRefused) as caught:
        converter.to_payload({"v": nested(MAX_DEPTH)})
    assert str(caught.value) == (
        f"a value nests {MAX_DEPTH + 1} levels of JSON arrays and objects, "
        f"over the limit of {MAX_DEPTH}"
    )
    deep = pydantic_data_converter.payload_converter.to_payload(nested(HARD_DEPTH + 1))
    with pytest.raises(PayloadRefused):
        converter.from_payload(deep)
    with pytest.raises(PayloadRefused):  # past pydantic's own serializer limit too
        converter.to_payload(nested(300))
    assert converter.from_payload(converter.to_payload(nested(MAX_DEPTH - 1))) == nested(
        MAX_DEPTH - 1
    )


DEEP_VARIABLE = """
workflow:
  name: deep
  variables: {data: {type: array, default: []}}
  steps:
    - {id: s, type: set, values: {n: "{{ data | length }}"}}
"""


@pytest.mark.parametrize("depth", [200, 300])
async def test_a_deep_variable_sent_unchecked_fails_the_run_at_once(client, depth):
    """Temporal's CLI sends the run's input without the engine's checks: the worker refuses
    it when it reads it, and the run fails with the reason instead of retrying."""
    spec = {
        "name": "deep",
        "variables": {"data": {"type": "array", "default": []}},
        "steps": [{"id": "s", "type": "set", "values": {"n": "{{ data | length }}"}}],
    }
    raw = {"definition": {"workflow": spec}, "variables": {"data": nested(depth)}}
    async with new_worker(client, {}) as worker:
        handle = await raw_client(client).start_workflow(
            "YamlWorkflow", raw, id=f"deep-{uuid.uuid4()}", task_queue=worker.task_queue
        )
        message = await failure_of(handle)
    assert "levels of JSON arrays and objects, over the limit of" in message
    assert await failed_workflow_tasks(handle) == 0


async def test_the_client_api_refuses_a_deep_variable_in_one_line(client):
    async with new_worker(client, {}) as worker:
        settings = settings_for(client.service_client.config.target_host, worker.task_queue)
        engine = EngineClient(client, settings, start_worker=False)
        with pytest.raises(UsageError) as caught:
            await engine.start(definition(DEEP_VARIABLE), {"data": nested(200)})
    assert "\n" not in str(caught.value) and f"over the limit of {MAX_DEPTH}" in str(caught.value)


@pytest.mark.parametrize("depth", [100, 200, 300, 5000])
async def test_rest_answers_400_for_a_deep_variable_and_starts_nothing(client, depth):
    async with new_worker(client, {}) as worker:
        settings = settings_for(client.service_client.config.target_host, worker.task_queue)
        engine = EngineClient(client, settings, start_worker=False)
        app = create_app(settings, ApiConfig(tokens=TOKENS), factory(engine))
        run_id = f"deep-{uuid.uuid4().hex[:8]}"
        body = json.dumps({"yaml": DEEP_VARIABLE, "execution_id": run_id, "variables": {}})
        deep = "[" * depth + '"bottom"' + "]" * depth
        body = body.replace('"variables": {}', f'"variables": {{"data": {deep}}}')
        async with asgi(app) as http:
            answer = await http.post(
                "/workflows/execute-yaml",
                content=body,
                headers={"content-type": "application/json"},
            )
            assert answer.status_code == 400, answer.text
            assert answer.json()["error"] == "bad_request"
            message = answer.json()["message"]
            assert "\n" not in message
            if depth < 1000:  # deeper, Python's JSON reader gives up first: still a 400
                assert f"over the limit of {MAX_DEPTH}" in message
            assert (await http.get(f"/workflows/{run_id}")).status_code == 404


STRUCTURED = """
workflow:
  name: structured
  steps:
    - id: ask
      type: llm_call
      model: gpt-4o-mini
      prompt: "give me a tree"
      max_reasks: 0
      outputs:
        - {name: tree, type: array}
"""


async def test_a_deep_structured_reply_fails_its_step_with_the_reason(client, endpoints, fake_llm):
    fake_llm.reply = lambda request: json.dumps({"tree": nested(230)})
    async with new_worker(client, endpoints) as worker:
        handle = await start(client, worker, RunInput(definition=definition(STRUCTURED)))
        message = await failure_of(handle)
    assert "the reply nests 231 levels of JSON, over the limit of" in message
    assert await failed_workflow_tasks(handle) == 0


@pytest.fixture
def deep_page() -> Iterator[str]:
    """A loopback server whose JSON page nests 230 levels."""
    body = json.dumps({"tree": nested(230)}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/tree"
    server.shutdown()
    server.server_close()


async def test_a_page_too_deep_as_json_is_kept_as_text(client, tmp_path, deep_page):
    actions = builtin_actions(
        HttpActions(httpx.AsyncClient(), AddressGuard.from_list(["127.0.0.1"]), 1_000_000),
        FileActions(tmp_path / "out"),
        EmailActions(SmtpSettings(host="127.0.0.1")),
        DatabaseActions({"default": f"sqlite:///{tmp_path}/db.sqlite"}),
    )
    text = (
        "workflow:\n  name: fetch\n  steps:\n"
        f'    - {{id: get, type: action, action: http_fetch, params: {{url: "{deep_page}"}},\n'
        "       outputs: [page]}\n"
    )
    async with new_worker(client, {}, actions=actions) as worker:
        handle = await start(client, worker, RunInput(definition=definition(text)))
        result = await asyncio.wait_for(handle.result(), timeout=30)
    page = result.outputs["page"]
    assert page["json"] is None and page["status"] == 200
    assert json.loads(page["text"]) == {"tree": nested(230)}


WAITS = """
workflow:
  name: waits
  steps:
    - {id: ok, type: wait_for_signal, signal: approve, outputs: [answer]}
"""


async def test_a_deep_signal_is_dropped_and_counted_and_the_run_takes_the_next(client):
    async with new_worker(client, {}) as worker:
        handle = await start(client, worker, RunInput(definition=definition(WAITS)))
        raw = raw_client(client).get_workflow_handle(handle.id)
        await raw.signal("approve", {"answer": nested(198)})
        status = await handle.query("status", result_type=RunStatus)
        assert status.dropped_signals == 1
        with pytest.raises(WorkflowUpdateFailedError) as refused:  # as an update: the reason
            await raw.execute_update("approve", {"answer": nested(198)})
        assert f"over the limit of {HARD_DEPTH}" in str(refused.value.cause)
        with pytest.raises(PayloadRefused):  # the engine's client refuses to send it at all
            await handle.signal("approve", {"answer": nested(MAX_DEPTH)})
        await handle.signal("approve", {"answer": "yes"})
        result = await asyncio.wait_for(handle.result(), timeout=30)
    assert result.outputs["answer"] == "yes"
    assert await failed_workflow_tasks(handle) == 0


class Size(BaseModel):
    size: int


def big_text(params: Size, request: ActionInput) -> str:
    return "x" * params.size


BIG = {"big_text": ActionSpec("big_text", Size, big_text)}


def big_run(size: int) -> RunInput:
    text = (
        "workflow:\n  name: big\n  steps:\n"
        f"    - {{id: big, type: action, action: big_text, params: {{size: {size}}},\n"
        '       outputs: [text], retry: {initial_interval: "10ms", max_attempts: 3}}\n'
    )
    return RunInput(
        definition=load_definition(text, "big.yaml", {**ACTION_PARAMS, "big_text": Size})
    )


async def test_a_result_too_big_for_history_fails_its_step_at_once(client):
    """External storage off (this test server's converter): Temporal's 2 MiB is the limit."""
    async with new_worker(client, {}, actions=BIG) as worker:
        handle = await start(client, worker, big_run(3_000_000))
        message = await failure_of(handle)
    assert "after 1 attempt(s)" in message
    assert f"bytes is over the limit of {INLINE_MAX_BYTES:,} bytes" in message
    assert await failed_workflow_tasks(handle) == 0


async def test_a_run_result_too_big_for_history_fails_the_run_with_the_reason(client):
    """Each step's output fits; the run's result holds it twice (outputs and steps)."""
    async with new_worker(client, {}, actions=BIG) as worker:
        handle = await start(client, worker, big_run(1_200_000))
        message = await failure_of(handle)
    assert f"bytes is over the limit of {INLINE_MAX_BYTES:,} bytes" in message
    assert await failed_workflow_tasks(handle) == 0


DEEPEST = (
    "workflow:\n  name: deepest\n  steps:\n    - {{id: s, type: set, values: {{v: {value}}}}}\n"
)


def deepest_definition() -> str:
    """A definition as deep as validation allows (deeper is refused with its line)."""
    depth = 1
    while True:
        value = "[" * (depth + 1) + "1" + "]" * (depth + 1)
        text = DEEPEST.format(value=value)
        try:
            definition(text)
        except DefinitionError:
            return DEEPEST.format(value="[" * depth + "1" + "]" * depth)
        depth += 1


async def test_the_deepest_definition_validation_accepts_still_runs(client):
    """The payload limit leaves room for every definition the validator accepts."""
    text = deepest_definition()
    _, result = await run_offline(client, text)
    assert result.status == "completed"


async def test_rest_answers_400_for_a_deep_signal_and_the_run_keeps_waiting(client):
    async with new_worker(client, {}) as worker:
        settings = settings_for(client.service_client.config.target_host, worker.task_queue)
        engine = EngineClient(client, settings, start_worker=False)
        app = create_app(settings, ApiConfig(tokens=TOKENS), factory(engine))
        started = await engine.start(definition(WAITS))
        signal = f"/workflows/{started.execution_id}/signal/approve"
        async with asgi(app) as http:
            answer = await http.post(signal, json={"answer": nested(150)})
            assert answer.status_code == 400, answer.text
            assert f"over the limit of {MAX_DEPTH}" in answer.json()["message"]
            assert (await http.post(signal, json={"answer": "yes"})).status_code == 200
        result = await asyncio.wait_for(engine.result(started.execution_id), timeout=30)
    assert result.outputs["answer"] == "yes"


def test_the_starter_refuses_a_value_too_deep_to_read_in_one_line(capsys, monkeypatch):
    """Thousands of levels stop Python's readers; the starter says so instead of a traceback."""
    import starter

    deep = "[" * 5000 + "1" + "]" * 5000
    with pytest.raises(VariablesError, match="too many levels"):
        read_text_value(deep)  # how --var and `resume --var` read a value
    monkeypatch.setenv("TEMPORAL_ADDRESS", "127.0.0.1:1")
    assert starter.main(["signal", "some-run", "approve", "--input", deep]) == 1
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0 and "too many levels" in err


class Echo(BaseModel):
    value: Any


def echo(params: Echo, request: ActionInput) -> Any:
    return params.value


async def test_a_variable_at_the_limit_goes_through_a_run_and_back(client):
    """The run wraps what it was given in more levels (an action's input, its result, the
    run's result): the headroom above MAX_DEPTH keeps it from being refused for that."""
    text = (
        "workflow:\n  name: echo\n"
        "  variables: {data: {type: array, default: []}}\n  steps:\n"
        '    - {id: e, type: action, action: echo, params: {value: "{{ data }}"},\n'
        "       outputs: [back]}\n"
    )
    run = RunInput(
        definition=load_definition(text, "echo.yaml", {**ACTION_PARAMS, "echo": Echo}),
        variables={"data": nested(MAX_DEPTH - 2)},
    )
    actions = {"echo": ActionSpec("echo", Echo, echo)}
    async with new_worker(client, {}, actions=actions) as worker:
        handle = await start(client, worker, run)
        result = await asyncio.wait_for(handle.result(), timeout=30)
    assert result.outputs["back"] == nested(MAX_DEPTH - 2)
