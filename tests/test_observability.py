"""What an operator sees: log lines that carry the run's ids, and Prometheus metrics with
the project's LLM counters, from a real worker process."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import uuid

import httpx

from tests.conftest import ROOT, definition, free_port
from tests.fake_llm import FakeLlmServer
from workflows.contracts import RunInput, RunResult
from workflows.interpreter import YamlWorkflow

HELLO = (ROOT / "definitions" / "hello_world.yaml").read_text()


async def test_a_runs_logs_carry_its_ids_and_metrics_count_its_calls(temporal_env):
    client = temporal_env.client
    task_queue = f"observe-{uuid.uuid4()}"
    port = free_port()
    with FakeLlmServer() as llm:
        env = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_BASE_URL"))}
        env |= {
            "TEMPORAL_ADDRESS": client.service_client.config.target_host,
            "TEMPORAL_TASK_QUEUE": task_queue,
            "OPENAI_BASE_URL": llm.openai_url,
            "OPENAI_API_KEY": "k",
            "METRICS_PORT": str(port),
        }
        worker = await asyncio.create_subprocess_exec(
            sys.executable, "worker.py", cwd=ROOT, env=env, stderr=asyncio.subprocess.PIPE
        )
        try:
            run_id = f"observe-{uuid.uuid4()}"
            result: RunResult = await client.execute_workflow(
                YamlWorkflow.run,
                RunInput(definition=definition(HELLO), variables={"user_name": "Al"}),
                id=run_id,
                task_queue=task_queue,
            )
            metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        finally:
            worker.send_signal(signal.SIGTERM)
            _, stderr = await asyncio.wait_for(worker.communicate(), 30)
    lines = [json.loads(line) for line in stderr.decode().splitlines() if line.startswith("{")]
    [call] = [line for line in lines if line["event"] == "llm call"]
    assert call["workflow_id"] == run_id and call["step_id"] == "greet"
    assert (call["attempt"], call["provider"], call["model"]) == (1, "openai", "gpt-4")
    assert call["cost_usd"] == result.usage.cost_usd > 0
    [step] = [line for line in lines if line["event"].startswith("step finished")]
    assert step["step_id"] == "greet" and step["temporal_workflow"]["workflow_id"] == run_id

    ok_calls = [
        m for m in metrics.splitlines()
        if m.startswith("llm_calls") and 'outcome="ok"' in m and 'provider="openai"' in m
    ]  # fmt: skip
    assert ok_calls and ok_calls[0].endswith(" 1")
    assert f" {result.usage.input_tokens}" in next(
        m for m in metrics.splitlines() if m.startswith("llm_input_tokens")
    )
    assert "temporal_" in metrics  # the SDK's own worker metrics are there too
