"""The REST API (engine/rest.py) on a live uvicorn against the session's dev server: tokens,
the seed's three endpoints, the rest of the product, the event stream, bad input, a stopped
Temporal server, the README's examples and a schemathesis run over the OpenAPI schema."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import re
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
import uvicorn
from temporalio.testing import WorkflowEnvironment

from activities.endpoints import Endpoint
from engine.client import EngineClient
from engine.local_stack import TUNED_SERVER_FLAGS, temporal_cli
from engine.rest import create_app, serve
from engine.rest_auth import ApiConfig, ApiToken, RateLimiter, Tokens
from engine.settings import Settings
from tests.conftest import ROOT, free_port, new_worker
from workflows import search_attributes
from workflows.errors import RunNotFound, UsageError

TOKEN = "ci-0123456789abcdef"
CI = {"Authorization": f"Bearer {TOKEN}"}
VIEWER = {"Authorization": "Bearer viewer-0123456789"}
TOKENS = (ApiToken("ci", TOKEN), ApiToken("viewer", "viewer-0123456789", read_only=True))

THREE_STEPS = """
workflow:
  name: rest-three
  steps:
    - {id: a, type: set, values: {x: 1}}
    - {id: b, type: action, action: sleep, params: {duration: 1s}}
    - {id: c, type: set, values: {y: 2}}
"""
WAITS = """
workflow:
  name: rest-waits
  variables: {who: {type: string, default: World}}
  steps:
    - {id: first, type: set, values: {greeting: "Hello {{ who }}"}}
    - {id: ok, type: wait_for_signal, signal: approve, outputs: [answer]}
    - {id: after, type: set, values: {line: "{{ who }} said {{ answer }}"}}
"""
INVALID = """workflow:
  name: broken
  steps:
    - id: one
      type: llm_call
      model: mock
      promt: "hi"
    - id: two
      type: teleport
"""


@dataclasses.dataclass
class Api:
    url: str
    engine: EngineClient
    settings: Settings

    def http(self, **headers: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, headers=headers or CI, timeout=60)


@contextlib.asynccontextmanager
async def live(app: Any) -> AsyncIterator[str]:
    """The app on a loopback port, served from this event loop (where the worker runs)."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False)
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done(), "uvicorn did not start"
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


def settings_for(address: str, task_queue: str, **changes: Any) -> Settings:
    return dataclasses.replace(
        Settings.from_env({}),
        address=address,
        task_queue=task_queue,
        definitions_dir=ROOT,
        ui_url="http://localhost:8233",
        **changes,
    )


def factory(engine: EngineClient):
    async def connect() -> EngineClient:
        return engine

    return connect


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def api(temporal_env: WorkflowEnvironment, llm_server) -> AsyncIterator[Api]:
    client = temporal_env.client
    endpoints = {"openai": Endpoint(api_key="test-key", base_url=llm_server.openai_url)}
    async with new_worker(client, endpoints) as worker:
        settings = settings_for(client.service_client.config.target_host, worker.task_queue)
        engine = EngineClient(client, settings, start_worker=False)
        config = ApiConfig(tokens=TOKENS, rate_per_minute=100_000)
        async with live(create_app(settings, config, factory(engine))) as url:
            yield Api(url, engine, settings)


def asgi(app: Any, **headers: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app)
    return httpx.AsyncClient(transport=transport, base_url="http://api", headers=headers or CI)


async def test_without_a_valid_token_401_and_nothing_starts(api: Api):
    run_id = f"no-token-{uuid.uuid4().hex[:8]}"
    body = {"yaml": THREE_STEPS, "execution_id": run_id}
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
        async with httpx.AsyncClient(base_url=api.url, headers=headers) as http:
            answer = await http.post("/workflows/execute-yaml", json=body)
            assert answer.status_code == 401, answer.text
            assert answer.headers["www-authenticate"].startswith("Bearer")
            assert answer.json()["error"] == "unauthorized"
            assert (await http.get(f"/workflows/{run_id}")).status_code == 401
    async with api.http(**VIEWER) as viewer:  # a read-only token reads, and starts nothing
        assert (await viewer.post("/workflows/execute-yaml", json=body)).status_code == 403
        assert (await viewer.get("/workflows", params={"limit": 1})).status_code == 200
        assert (await viewer.get(f"/workflows/{run_id}")).status_code == 404
    with pytest.raises(RunNotFound):
        await api.engine.status(run_id)
    async with httpx.AsyncClient(base_url=api.url) as anyone:  # the description is public
        assert (await anyone.get("/openapi.json")).status_code == 200
        assert (await anyone.get("/health")).json() == {"status": "ok"}


async def test_the_seeds_three_endpoints_keep_the_seeds_shapes(api: Api, tmp_path: Path):
    async with api.http() as http:
        answer = await http.post(
            "/workflows/execute",
            json={
                "workflow_file": "definitions/hello_world.yaml",
                "variables": {"user_name": "Al"},
            },
        )
        assert answer.status_code == 200, answer.text
        started = answer.json()
        assert {"execution_id", "status", "message"} <= set(started)
        assert started["status"] == "started"
        run_id = started["execution_id"]
        outcome = (await http.get(f"/workflows/{run_id}/result", params={"timeout": 30})).json()
        assert outcome["status"] == "completed", outcome
        assert outcome["result"]["outputs"]["greeting"] == "Hello from gpt-4"
        seed = (await http.get(f"/workflows/status/{run_id}")).json()
        assert set(seed) == {
            "execution_id", "workflow_name", "status", "current_step", "running_steps",
            "completed_steps", "started_at", "updated_at", "variables", "outputs", "usage",
        }  # fmt: skip
        assert seed["status"] == "completed" and seed["completed_steps"] == 1
        assert seed["outputs"]["greet"] == {"greeting": "Hello from gpt-4"}
        assert seed["variables"] == {"user_name": "Al"}

        # the same run through the CLI and the server the UI reads
        env = {
            **os.environ,
            "TEMPORAL_ADDRESS": api.settings.address,
            "TEMPORAL_TASK_QUEUE": api.settings.task_queue,
            "TEMPORAL_DEV_DIR": str(tmp_path),
        }
        cli = await asyncio.create_subprocess_exec(
            sys.executable, "starter.py", "status", run_id, "--json", cwd=ROOT, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(cli.communicate(), 60)
        assert cli.returncode == 0, err.decode()
        shown = json.loads(out)
        assert shown["execution_status"] == "completed"
        assert shown["steps"]["greet"]["outputs"] == {"greeting": "Hello from gpt-4"}
        description = await api.engine.temporal.get_workflow_handle(run_id).describe()
        assert description.workflow_type == "YamlWorkflow"
        assert description.typed_search_attributes.get(search_attributes.DEFINITION_NAME) == (
            "HelloWorld"
        )

        waiting = (await http.post("/workflows/execute-yaml", json={"yaml": WAITS})).json()
        cancelled = await http.post(f"/workflows/cancel/{waiting['execution_id']}")
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["status"] == "cancelled"
        assert cancelled.json()["finished_steps"] == ["first"]
        again = await http.post(f"/workflows/cancel/{waiting['execution_id']}")
        assert again.status_code == 409 and "nothing to cancel" in again.json()["message"]


async def read_events(http: httpx.AsyncClient, path: str) -> list[tuple[str, dict]]:
    """Every event of a stream, until the server ends it."""
    found: list[tuple[str, dict]] = []
    async with http.stream("GET", path) as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        event = None
        async for line in stream.aiter_lines():
            if line.startswith("event: "):
                event = line.removeprefix("event: ")
            elif line.startswith("data: "):
                found.append((event or "", json.loads(line.removeprefix("data: "))))
    return found


async def test_the_event_stream_of_a_three_step_run_ends_with_the_run(api: Api):
    async with api.http() as http:
        started = (await http.post("/workflows/execute-yaml", json={"yaml": THREE_STEPS})).json()
        path = f"/workflows/{started['execution_id']}/events"
        found = await asyncio.wait_for(read_events(http, path), 30)
        finished = [data["step"] for event, data in found if event == "step_finished"]
        assert finished == ["a", "b", "c"]
        seen_starting = [data["step"] for event, data in found if event == "step_started"]
        assert len(seen_starting) == len(set(seen_starting)) and "b" in seen_starting
        assert {"usage", "steps_done", "total_steps"} <= set(found[-2][1])
        assert found[-1][0] == "end" and found[-1][1]["status"] == "completed"
        assert [event for event, _ in found].count("end") == 1
        # an ended run replays its steps and ends at once
        replayed = await asyncio.wait_for(read_events(http, path), 10)
        assert [e for e, _ in replayed] == ["step_finished"] * 3 + ["end"]


async def test_signal_pause_resume_result_and_rerun(api: Api):
    async with api.http() as http:
        started = (await http.post("/workflows/execute-yaml", json={"yaml": WAITS})).json()
        run = f"/workflows/{started['execution_id']}"
        assert (await http.post(f"{run}/pause")).json()["signal"] == "pause"
        for _ in range(100):
            if (await http.get(run)).json()["paused"]:
                break
            await asyncio.sleep(0.1)
        else:
            pytest.fail("the run did not pause")
        waited = (await http.get(f"{run}/result", params={"timeout": 0.3})).json()
        assert waited["status"] == "running" and waited["result"] is None
        wrong = await http.post(f"{run}/signal/approve", json={"answer": 5})
        assert wrong.status_code == 400  # refused to the sender: the step keeps waiting
        assert "'answer' must be a string, not 5" in wrong.json()["message"]
        signalled = (await http.post(f"{run}/signal/approve", json={"answer": "yes"})).json()
        assert signalled["answer"] == "accepted by step 'ok'"
        odd = await http.post(f"{run}/signal/approv", json={})
        assert odd.status_code == 400 and "waits for 'approve'" in odd.json()["message"]
        assert (await http.post(f"{run}/resume")).status_code == 200
        done = (await http.get(f"{run}/result", params={"timeout": 30})).json()
        assert done["result"]["steps"]["after"]["outputs"] == {"line": "World said yes"}
        late = await http.post(f"{run}/signal/approve", json={"answer": "late"})
        assert late.status_code == 409, late.text

        rerun = await http.post(
            f"{run}/rerun", json={"from_step": "after", "variables": {"who": "Bob"}}
        )
        assert rerun.status_code == 200, rerun.text
        assert rerun.json()["reused_steps"] == ["first", "ok"]
        again = f"/workflows/{rerun.json()['execution_id']}/result"
        redone = (await http.get(again, params={"timeout": 30})).json()
        assert redone["result"]["steps"]["after"]["outputs"] == {"line": "Bob said yes"}
        bad = await http.post(f"{run}/rerun", json={"from_step": "nowhere"})
        assert bad.status_code == 400 and "nowhere" in bad.json()["message"]


async def test_list_filters_and_pages(api: Api):
    name = f"rest-list-{uuid.uuid4().hex[:8]}"
    text = f"workflow:\n  name: {name}\n  steps:\n    - {{id: a, type: set, values: {{x: 1}}}}\n"
    async with api.http() as http:
        ids = []
        for _ in range(3):
            started = await http.post("/workflows/execute-yaml", json={"yaml": text})
            ids.append(started.json()["execution_id"])
            await http.get(f"/workflows/{ids[-1]}/result")
        query = {"workflow": name, "status": "completed"}
        for _ in range(100):  # visibility lags a moment behind
            page = (await http.get("/workflows", params=query)).json()
            if len(page["executions"]) == 3:
                break
            await asyncio.sleep(0.1)
        assert [e["execution_id"] for e in page["executions"]] == ids[::-1]
        first = (await http.get("/workflows", params={**query, "limit": 2})).json()
        assert [e["execution_id"] for e in first["executions"]] == ids[:0:-1]
        rest = await http.get(
            "/workflows", params={**query, "limit": 2, "page": first["next_page"]}
        )
        assert [e["execution_id"] for e in rest.json()["executions"]] == ids[:1]
        assert rest.json()["next_page"] is None
        assert (await http.get("/workflows", params={"workflow": name, "status": "failed"})).json()[
            "executions"
        ] == []
        assert (await http.get("/workflows", params={"status": "sleeping"})).status_code == 400
        assert (await http.get("/workflows", params={"page": "yesterday"})).status_code == 400


async def test_validate_and_invalid_yaml_locate_every_problem(api: Api):
    async with api.http() as http:
        good = (await http.post("/workflows/validate", json={"yaml": THREE_STEPS})).json()
        assert good == {"valid": True, "workflow_name": "rest-three", "problems": []}
        by_file = {"workflow_file": "definitions/hello_world.yaml"}
        assert (await http.post("/workflows/validate", json=by_file)).json()["valid"]
        bad = (await http.post("/workflows/validate", json={"yaml": INVALID})).json()
        assert bad["valid"] is False
        assert [(p["line"], p["column"]) for p in bad["problems"]] == [(7, 7), (9, 13)]
        assert "did you mean 'prompt'" in bad["problems"][0]["message"]
        assert all(p["file"] == "<yaml>" for p in bad["problems"])
        refused = await http.post("/workflows/execute-yaml", json={"yaml": INVALID})
        assert refused.status_code == 422
        assert refused.json()["error"] == "invalid_definition"
        assert refused.json()["problems"] == bad["problems"]
        broken = await http.post("/workflows/execute-yaml", json={"yaml": "workflow: [\n"})
        assert broken.status_code == 422 and broken.json()["problems"][0]["line"] >= 1


async def test_bad_input_gets_its_documented_status(api: Api, tmp_path: Path):
    definitions = tmp_path / "definitions"
    definitions.mkdir()
    (tmp_path / "outside.yaml").write_text(THREE_STEPS)
    (definitions / "inside.yaml").write_text(THREE_STEPS)
    (definitions / "out.yaml").symlink_to(tmp_path / "outside.yaml")
    settings = dataclasses.replace(api.settings, definitions_dir=definitions)
    config = ApiConfig(tokens=TOKENS, max_body_bytes=20_000)
    app = create_app(settings, config, factory(api.engine))
    async with asgi(app) as http:
        for name in ("../outside.yaml", "../../etc/passwd", "/etc/passwd", "out.yaml", "a\0b"):
            answer = await http.post("/workflows/execute", json={"workflow_file": name})
            assert answer.status_code == 400, (name, answer.text)
            assert answer.json()["error"] == "bad_request"
        assert "DEFINITIONS_DIR" in answer.json()["message"] or "usable" in answer.json()["message"]
        missing = await http.post("/workflows/execute", json={"workflow_file": "nope.yaml"})
        assert missing.status_code == 400 and "no such file" in missing.json()["message"]
        checked = await http.post("/workflows/validate", json={"workflow_file": "inside.yaml"})
        assert checked.json()["valid"] is True

        run_id = f"big-{uuid.uuid4().hex[:8]}"
        big = {"yaml": THREE_STEPS + "#" * 30_000, "execution_id": run_id}
        assert (await http.post("/workflows/execute-yaml", json=big)).status_code == 413

        async def chunks():  # no content-length: counted as it arrives
            yield json.dumps(big).encode()

        streamed = await http.post(
            "/workflows/execute-yaml",
            content=chunks(),
            headers={"content-type": "application/json"},
        )
        assert streamed.status_code == 413 and streamed.json()["error"] == "too_large"
        with pytest.raises(RunNotFound):
            await api.engine.status(run_id)

        unknown = f"unknown-{uuid.uuid4().hex[:8]}"
        for method, path in [
            ("GET", f"/workflows/{unknown}"),
            ("GET", f"/workflows/status/{unknown}"),
            ("GET", f"/workflows/{unknown}/result"),
            ("GET", f"/workflows/{unknown}/events"),
            ("POST", f"/workflows/cancel/{unknown}"),
            ("POST", f"/workflows/{unknown}/signal/approve"),
            ("POST", f"/workflows/{unknown}/pause"),
            ("POST", f"/workflows/{unknown}/rerun"),
        ]:
            answer = await http.request(method, path, json={} if method == "POST" else None)
            assert answer.status_code == 404, (path, answer.text)
            assert answer.json()["error"] == "not_found"
        for body in (b"{not json", b'{"yaml": "x", "varaibles": {}}', b"[]"):
            answer = await http.post(
                "/workflows/execute-yaml",
                content=body,
                headers={"content-type": "application/json"},
            )
            assert answer.status_code == 400, answer.text
        typo = await http.get("/workflows", params={"stauts": "failed"})
        assert typo.status_code == 400 and "'stauts'" in typo.json()["message"]
        wrong = await http.post(
            "/workflows/execute-yaml",
            json={"yaml": THREE_STEPS, "variables": {"nobody": 1}},
        )
        assert wrong.status_code == 400 and "nobody" in wrong.json()["message"]


async def test_over_the_rate_limit_429_with_retry_after_and_nothing_starts(api: Api):
    app = create_app(api.settings, ApiConfig(tokens=TOKENS, rate_per_minute=2), factory(api.engine))
    run_id = f"limited-{uuid.uuid4().hex[:8]}"
    async with asgi(app) as http:
        assert (await http.get("/workflows", params={"limit": 1})).status_code == 200
        assert (await http.get("/workflows", params={"limit": 1})).status_code == 200
        answer = await http.post(
            "/workflows/execute-yaml", json={"yaml": THREE_STEPS, "execution_id": run_id}
        )
        assert answer.status_code == 429
        assert int(answer.headers["retry-after"]) >= 1
        assert answer.json()["error"] == "rate_limited"
    async with asgi(app, **VIEWER) as other:  # each token has its own budget
        assert (await other.get("/workflows", params={"limit": 1})).status_code == 200
    with pytest.raises(RunNotFound):
        await api.engine.status(run_id)
    clock = [0.0]
    limiter = RateLimiter(60, clock=lambda: clock[0])
    assert [limiter.take("k") for _ in range(60)] == [0.0] * 60
    assert limiter.take("k") == pytest.approx(1.0)
    clock[0] = 1.0
    assert limiter.take("k") == 0.0


async def test_a_stopped_temporal_server_is_503_and_the_api_serves_when_it_is_back():
    port = free_port()
    settings = settings_for(f"127.0.0.1:{port}", f"rest-{uuid.uuid4()}")

    async def connect() -> EngineClient:
        return await EngineClient.connect(settings, start_local=False, start_worker=False)

    app = create_app(settings, ApiConfig(tokens=TOKENS), connect)
    async with asgi(app) as http:
        for method, path, body in [
            ("GET", "/workflows", None),
            ("GET", "/workflows/status/x", None),
            ("POST", "/workflows/execute-yaml", {"yaml": THREE_STEPS}),
        ]:
            answer = await http.request(method, path, json=body)
            assert answer.status_code == 503, answer.text
            assert answer.json()["error"] == "temporal_unavailable"
            assert f"127.0.0.1:{port}" in answer.json()["message"]
        assert (await http.post("/workflows/validate", json={"yaml": THREE_STEPS})).json()["valid"]
        env = await WorkflowEnvironment.start_local(
            port=port,
            dev_server_existing_path=temporal_cli(),
            dev_server_extra_args=TUNED_SERVER_FLAGS,
            search_attributes=search_attributes.ALL,
        )
        try:
            answer = await http.get("/workflows")
            assert answer.status_code == 200, answer.text
            assert answer.json() == {"executions": [], "next_page": None}
        finally:
            await env.shutdown()
        answer = await http.get("/workflows")  # the server goes away under a connected client
        assert answer.status_code == 503, answer.text  # after the SDK's retries (~10 s)
        assert f"cannot reach Temporal at 127.0.0.1:{port}" in answer.json()["message"]


async def test_tokens_from_the_environment_and_a_file(tmp_path: Path):
    file = tmp_path / "tokens"
    file.write_text("# operators\nalice=alice-token\n\ndash:read=dash-token  # read-only\n")
    config = ApiConfig.from_env(
        {
            "API_TOKENS": "ci=abc123, bot=b0t",
            "API_TOKENS_FILE": str(file),
            "API_RATE_PER_MINUTE": "7",
        }
    )
    assert [(t.name, t.read_only) for t in config.tokens] == [
        ("ci", False), ("bot", False), ("alice", False), ("dash", True)
    ]  # fmt: skip
    assert config.rate_per_minute == 7
    assert "abc123" not in repr(config)
    tokens = Tokens(config.tokens)
    assert tokens.find("dash-token").name == "dash" and tokens.find("abc12") is None
    for env, message in [
        ({"API_TOKENS": "ci"}, "not name=token"),
        ({"API_TOKENS": "ci=a,ci=b"}, "given twice"),
        ({"API_TOKENS": "ci=a,cd=a"}, "share one token"),
        ({"API_TOKENS": "ci:admin=a"}, "name:read=token"),
        ({"API_TOKENS_FILE": str(tmp_path / "missing")}, "API_TOKENS_FILE"),
        ({"API_RATE_PER_MINUTE": "0"}, "positive"),
    ]:
        with pytest.raises(UsageError, match=message):
            ApiConfig.from_env(env)
    with pytest.raises(UsageError, match="refusing to listen on 0.0.0.0 without API tokens"):
        await serve(Settings.from_env({}), ApiConfig(), "0.0.0.0", free_port())
    cli = await asyncio.create_subprocess_exec(
        sys.executable, "starter.py", "serve", "--host", "0.0.0.0", "--port", str(free_port()),
        cwd=ROOT, env={k: v for k, v in os.environ.items() if not k.startswith("API_TOKENS")},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(cli.communicate(), 60)
    assert cli.returncode == 1
    assert err.decode().strip().startswith("error: refusing to listen on 0.0.0.0")


async def test_every_request_is_logged_with_the_tokens_name_never_the_token(
    api: Api, caplog: pytest.LogCaptureFixture
):
    with caplog.at_level(logging.INFO, logger="engine.rest"):
        async with api.http() as http:
            await http.get("/workflows", params={"limit": 1})
        async with api.http(Authorization="Bearer not-a-token") as http:
            await http.get("/workflows")
    lines = [r for r in caplog.records if r.name == "engine.rest"]
    assert any(r.token_name == "ci" and r.status == 200 for r in lines)
    assert any(r.token_name == "-" and r.status == 401 for r in lines)
    for record in lines:
        assert TOKEN not in str(record.__dict__) and "not-a-token" not in str(record.__dict__)


def readme_section() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return text.split("\n## REST API\n", 1)[1].split("\n## ", 1)[0]


def fenced(section: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```$", section, re.MULTILINE | re.DOTALL)


async def test_the_readme_examples_run_as_written(api: Api):
    section = readme_section()
    shell = [block for block in fenced(section, "bash") if "curl" in block]
    python = [block for block in fenced(section, "python") if "httpx" in block]
    assert len(shell) >= 2 and python
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}

    def live_url(block: str) -> str:
        assert "http://localhost:8000" in block and "change-me" in block
        return block.replace("http://localhost:8000", api.url).replace("change-me", TOKEN)

    for block in shell:
        run = await asyncio.create_subprocess_exec(
            "bash", "-euo", "pipefail", "-c", live_url(block), cwd=ROOT, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(run.communicate(), 60)
        assert run.returncode == 0, f"{block}\n{out.decode()}\n{err.decode()}"
        assert "Hello from gpt-4" in out.decode(), out.decode()
    for block in python:
        run = await asyncio.create_subprocess_exec(
            sys.executable, "-c", live_url(block), cwd=ROOT, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(run.communicate(), 60)
        assert run.returncode == 0, f"{block}\n{err.decode()}"
        assert "Hello from gpt-4" in out.decode() and "event: end" in out.decode()


async def test_openapi_documents_every_endpoint_error_and_token(api: Api):
    async with api.http() as http:
        schema = (await http.get("/openapi.json")).json()
    paths = schema["paths"]
    assert {"/workflows/execute", "/workflows/status/{execution_id}",
            "/workflows/cancel/{execution_id}", "/workflows/{execution_id}/events",
            "/workflows/validate", "/workflows/{execution_id}/rerun"} <= set(paths)  # fmt: skip
    for path, operations in paths.items():
        for method, operation in operations.items():
            if path not in ("/health",):
                assert {"400", "401", "429", "503"} <= set(operation["responses"]), (path, method)
                if not path.startswith("/triggers/"):  # a webhook proves itself instead
                    assert operation["security"] == [{"HTTPBearer": []}]
    assert "HTTPValidationError" not in json.dumps(schema)


@pytest.mark.timeout(360)  # every route's examples, coverage and stateful phases: minutes
async def test_schemathesis_finds_no_server_error_and_no_schema_violation(api: Api):
    failures = await asyncio.to_thread(fuzz, api.url)
    assert not failures, "\n\n".join(sorted(set(failures))[:10])


def fuzz(url: str) -> list[str]:
    """schemathesis's engine, as its CLI runs it (examples, coverage, fuzzing and stateful
    phases), with a token: every failed check and error, as text."""
    import schemathesis
    from schemathesis.engine import Status, from_schema
    from schemathesis.engine.events import FatalError, NonFatalError, ScenarioFinished

    config = schemathesis.Config.from_dict(
        {
            "seed": 15,
            "generation": {"max-examples": 20},
            "auth": {"openapi": {"HTTPBearer": {"bearer": TOKEN}}},
            # a well-formed request may name a file, a run or a definition that does not
            # exist or does not validate: 400, 404 and 422 are documented answers to it
            "checks": {
                "positive_data_acceptance": {"enabled": False},
                # and a body over the size limit is refused before it is read
                "negative_data_rejection": {
                    "expected-statuses": [400, 401, 403, 404, 405, 409, 413, 415, 422, 429]
                },
                # the shared dev server holds other tests' runs, whose workers are gone: their
                # status is the documented 503 "no worker answered". Any 500 still fails.
                "not_a_server_error": {"expected-statuses": ["2xx", "3xx", "4xx", "503"]},
            },
        }
    )
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json", config=config)
    found = []
    for event in from_schema(schema).execute():
        if isinstance(event, ScenarioFinished) and event.status == Status.FAILURE:
            for checks in event.recorder.checks.values():
                for check in checks:
                    if check.failure_info is not None:
                        failure = check.failure_info.failure
                        found.append(
                            f"{event.label}: {failure.title}: {failure.message[:500]}\n"
                            f"{check.failure_info.code_sample[:500]}"
                        )
        elif isinstance(event, (NonFatalError, FatalError)):
            found.append(f"{type(event).__name__}: {getattr(event, 'label', '')} {event}")
    return found
