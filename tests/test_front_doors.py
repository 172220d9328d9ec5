"""One run, three front doors: the client API, the Temporal CLI and the status query agree
on what happened, whichever door started, signalled, cancelled or reran it."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import uuid

import pytest

from engine.client import EngineClient
from engine.local_stack import temporal_cli
from engine.settings import Settings
from tests.conftest import definition, new_worker
from workflows.errors import RunFailed

WAITS = """
workflow:
  name: doors
  steps:
    - {id: first, type: set, values: {x: 1}}
    - {id: ok, type: wait_for_signal, signal: approve, outputs: [answer]}
    - {id: after, type: set, values: {y: "{{ answer }}"}}
"""


def temporal(address: str, *args: str) -> dict:
    done = subprocess.run(
        [temporal_cli(), *args, "--address", address, "-o", "json"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return json.loads(done.stdout) if done.stdout.strip() else {}


async def test_start_signal_cancel_and_rerun_agree_across_front_doors(client):
    address = client.service_client.config.target_host
    async with new_worker(client, {}) as worker:
        settings = dataclasses.replace(
            Settings.from_env({}), address=address, task_queue=worker.task_queue
        )
        engine = EngineClient(client, settings, start_worker=False)
        started = await engine.start(definition(WAITS), execution_id=f"doors-{uuid.uuid4()}")
        run_id = started.execution_id
        # the Temporal CLI sees the run the client API started, and can signal it
        described = temporal(address, "workflow", "describe", "--workflow-id", run_id)
        assert described["workflowExecutionInfo"]["type"]["name"] == "YamlWorkflow"
        temporal(
            address, "workflow", "signal", "--workflow-id", run_id, "--name", "approve",
            "--input", '{"answer": "from the CLI"}',
        )  # fmt: skip
        result = await engine.result(run_id)
        assert result.outputs["y"] == "from the CLI"

        second = await engine.start(definition(WAITS))
        temporal(address, "workflow", "cancel", "--workflow-id", second.execution_id)
        with pytest.raises(RunFailed, match="was cancelled"):
            await engine.result(second.execution_id)
        status = await engine.status(second.execution_id)
        assert status.execution_status == "cancelled" and status.running == []
        assert list(status.steps) == ["first"]
        [listed] = [r for r in await engine.list("doors") if r.execution_id == second.execution_id]
        assert listed.status == "cancelled"

        rerun = await engine.rerun(second.execution_id)
        assert rerun.reused_steps == ["first"]
        await engine.signal(rerun.execution_id, "approve", {"answer": "later"})
        assert (await engine.result(rerun.execution_id)).outputs["y"] == "later"
        described = temporal(address, "workflow", "describe", "--workflow-id", rerun.execution_id)
        assert described["workflowExecutionInfo"]["status"] == "WORKFLOW_EXECUTION_STATUS_COMPLETED"
