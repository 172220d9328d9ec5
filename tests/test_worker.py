"""worker.py as an operator runs it: a process that polls until SIGTERM, then stops cleanly."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import uuid

from temporalio.testing import WorkflowEnvironment

from engine.connection import metrics_address
from engine.settings import Settings
from tests.conftest import ROOT, definition, worker_env
from workflows.contracts import RunInput, RunResult
from workflows.interpreter import YamlWorkflow


async def test_worker_process_runs_a_workflow_and_stops_on_sigterm(
    temporal_env: WorkflowEnvironment,
):
    task_queue = f"proc-{uuid.uuid4()}"
    env = worker_env(temporal_env.client.service_client.config.target_host, task_queue)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "worker.py", cwd=ROOT, env=env, stderr=asyncio.subprocess.PIPE
    )
    try:
        hello = definition((ROOT / "definitions" / "hello_world.yaml").read_text())
        result: RunResult = await temporal_env.client.execute_workflow(
            YamlWorkflow.run,
            RunInput(definition=hello, mock_providers=["openai"]),
            id=f"proc-{uuid.uuid4()}",
            task_queue=task_queue,
        )
        assert result.status == "completed"
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 0
    events = [
        json.loads(line)["event"] for line in stderr.decode().splitlines() if line.startswith("{")
    ]
    assert events[0] == "worker started"
    assert events[-2:] == ["worker stopping", "worker stopped"]


async def test_llm_calls_can_go_to_their_own_rate_limited_queue(temporal_env: WorkflowEnvironment):
    task_queue, llm_queue = f"main-{uuid.uuid4()}", f"llm-{uuid.uuid4()}"
    env = worker_env(
        temporal_env.client.service_client.config.target_host,
        task_queue,
        TEMPORAL_LLM_TASK_QUEUE=llm_queue,
        LLM_RATE_PER_SECOND="5",
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "worker.py", cwd=ROOT, env=env, stderr=asyncio.subprocess.DEVNULL
    )
    try:
        hello = definition((ROOT / "definitions" / "hello_world.yaml").read_text())
        handle = await temporal_env.client.start_workflow(
            YamlWorkflow.run,
            RunInput(definition=hello, mock_providers=["openai"], llm_task_queue=llm_queue),
            id=f"queues-{uuid.uuid4()}",
            task_queue=task_queue,
        )
        assert (await handle.result()).status == "completed"
        history = await handle.fetch_history()
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), timeout=30)
    [scheduled] = [
        event.activity_task_scheduled_event_attributes
        for event in history.events
        if event.HasField("activity_task_scheduled_event_attributes")
    ]
    assert (scheduled.activity_type.name, scheduled.task_queue.name) == ("llm_call", llm_queue)


def test_metrics_listen_on_loopback_unless_metrics_bind_says_otherwise():
    default = Settings.from_env({"METRICS_PORT": "9464"})
    assert (default.metrics_port, default.metrics_bind) == (9464, "127.0.0.1")
    assert Settings.from_env({"METRICS_PORT": "9464", "METRICS_BIND": ""}).metrics_bind == (
        "127.0.0.1"
    )
    assert Settings.from_env({"METRICS_BIND": "0.0.0.0"}).metrics_bind == "0.0.0.0"
    # The address handed to the SDK's PrometheusConfig.
    assert metrics_address("127.0.0.1", 9464) == "127.0.0.1:9464"
    assert metrics_address("0.0.0.0", 9464) == "0.0.0.0:9464"
    assert metrics_address("::1", 9464) == metrics_address("[::1]", 9464) == "[::1]:9464"
