"""Crashes with real processes: a worker killed with SIGKILL mid-step, a server stopped and
restarted mid-run. Nothing finished is lost and no finished step is paid for twice."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter

from activities.endpoints import Endpoint
from engine.local_stack import TUNED_SERVER_FLAGS, search_attribute_flags, temporal_cli
from tests.conftest import ROOT, definition, free_port, new_worker, worker_env
from tests.fake_llm import FakeLlmServer, Request
from workflows.contracts import RunInput, RunResult
from workflows.interpreter import YamlWorkflow

THREE_STEPS = """
workflow:
  name: ThreeSteps
  defaults: {model: gpt-4o-mini, timeout: "3s", retry: {initial_interval: "100ms"}}
  steps:
    - {id: one, type: llm_call, prompt: "step one", outputs: [a]}
    - {id: two, type: llm_call, prompt: "step two after {{ a }}", outputs: [b]}
    - {id: three, type: llm_call, prompt: "step three after {{ b }}", outputs: [c]}
"""


def echo(request: Request) -> str:
    return request.body["messages"][-1]["content"].split(" after ")[0].upper()


def spawn_worker(address: str, task_queue: str, llm: FakeLlmServer) -> subprocess.Popen[bytes]:
    env = worker_env(address, task_queue, llm)
    return subprocess.Popen(
        [sys.executable, "worker.py"], cwd=ROOT, env=env, stderr=subprocess.DEVNULL
    )


EXPECTED = {"a": "STEP ONE", "b": "STEP TWO", "c": "STEP THREE"}


async def start_until_step_two(
    client: Client, task_queue: str, llm: FakeLlmServer
) -> WorkflowHandle[Any, RunResult]:
    """Start the three-step run and return once step two's model call is in flight."""
    handle = await client.start_workflow(
        YamlWorkflow.run,
        RunInput(definition=definition(THREE_STEPS)),
        id=f"durability-{uuid.uuid4()}",
        task_queue=task_queue,
    )
    await wait_for(lambda: any("step two" in r.prompt_text for r in llm.requests))
    return handle


def calls(llm: FakeLlmServer) -> list[str]:
    """Which step each model call was for."""
    return [r.prompt_text.strip().split(" after ")[0] for r in llm.requests]


async def wait_for(predicate, timeout: float = 30.0) -> None:
    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.05)

    await asyncio.wait_for(poll(), timeout)


async def test_worker_killed_mid_step_resumes_on_a_new_worker(temporal_env):
    client = temporal_env.client
    task_queue = f"crash-{uuid.uuid4()}"
    address = client.service_client.config.target_host
    with FakeLlmServer(reply=echo, latency=1.0) as llm:
        first = spawn_worker(address, task_queue, llm)
        handle = await start_until_step_two(client, task_queue, llm)
        first.send_signal(signal.SIGKILL)  # in the middle of step two's model call
        first.wait()
        second = spawn_worker(address, task_queue, llm)
        try:
            result: RunResult = await asyncio.wait_for(handle.result(), 60)
        finally:
            second.terminate()
            second.wait()
    assert result.outputs == EXPECTED
    prompts = calls(llm)
    assert prompts.count("step one") == 1  # finished before the crash: never paid again
    assert prompts.count("step two") == 2  # interrupted: at most once more
    assert prompts.count("step three") == 1


@pytest.fixture
def sqlite_server(
    tmp_path: Path,
) -> Iterator[tuple[str, Callable[[], None], list[subprocess.Popen[bytes]]]]:
    """A dev server on a SQLite file that the test can stop and start again."""
    port = free_port()
    command = [
        temporal_cli(), "server", "start-dev", "--ip", "127.0.0.1", "--port", str(port),
        "--headless", "--db-filename", str(tmp_path / "temporal.db"), "--log-level", "error",
        *TUNED_SERVER_FLAGS, *search_attribute_flags(),
    ]  # fmt: skip
    processes: list[subprocess.Popen[bytes]] = []

    def start() -> None:
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        processes.append(subprocess.Popen(command, **quiet))

    start()
    yield f"127.0.0.1:{port}", start, processes
    for process in processes:
        process.terminate()
        process.wait()


async def connect(address: str) -> Client:
    for _ in range(100):
        try:
            return await Client.connect(address, data_converter=pydantic_data_converter)
        except RuntimeError:
            await asyncio.sleep(0.2)
    raise AssertionError(f"no server at {address}")


async def test_server_restart_mid_run_loses_nothing(sqlite_server):
    address, start_server, processes = sqlite_server
    client = await connect(address)
    task_queue = f"restart-{uuid.uuid4()}"
    with FakeLlmServer(reply=echo, latency=0.5) as llm:
        endpoints = {"openai": Endpoint(api_key="k", base_url=llm.openai_url)}
        async with new_worker(client, endpoints, task_queue=task_queue):
            handle = await start_until_step_two(client, task_queue, llm)
            processes[-1].terminate()  # the server goes away mid-run ...
            processes[-1].wait()
            await asyncio.sleep(1)
            start_server()  # ... and comes back on the same SQLite file
            client = await connect(address)
            result: RunResult = await asyncio.wait_for(
                client.get_workflow_handle(handle.id, result_type=RunResult).result(), 90
            )
    assert result.outputs == EXPECTED
    prompts = calls(llm)
    assert prompts.count("step one") == 1
    assert prompts.count("step three") == 1


async def test_two_workers_on_one_queue_one_killed_the_other_finishes(temporal_env):
    client = temporal_env.client
    task_queue = f"failover-{uuid.uuid4()}"
    address = client.service_client.config.target_host
    with FakeLlmServer(reply=echo, latency=1.0) as llm:
        first = spawn_worker(address, task_queue, llm)
        handle = await start_until_step_two(client, task_queue, llm)
        second = spawn_worker(address, task_queue, llm)  # both poll the queue now
        await asyncio.sleep(1)
        first.send_signal(signal.SIGKILL)
        first.wait()
        try:
            result: RunResult = await asyncio.wait_for(handle.result(), 60)
            history = await handle.fetch_history()
        finally:
            second.terminate()
            second.wait()
    assert result.outputs == EXPECTED
    identities = {
        event.activity_task_started_event_attributes.identity
        for event in history.events
        if event.HasField("activity_task_started_event_attributes")
    }
    assert any(identity.startswith(f"{second.pid}@") for identity in identities)
