"""The seed's Python API, `from workflow_engine import WorkflowEngine`, as the seed uses it."""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from engine.settings import Settings
from tests.conftest import ROOT
from workflow_engine import WorkflowEngine

QUICKSTART = """
import asyncio
from workflow_engine import WorkflowEngine

async def main():
    # Initialize engine
    engine = WorkflowEngine(
        openai_api_key="your-key-here"
    )

    # Load and execute workflow
    result = await engine.execute_file(
        '{path}',
        variables={{'user_name': 'Alice'}}
    )

    print(result['outputs']['greeting'])

asyncio.run(main())
"""


def test_the_seed_quickstart_prints_a_greeting_on_a_machine_where_nothing_runs(
    stack_env, llm_server, tmp_path: Path
):
    """Nothing listens at TEMPORAL_ADDRESS: the engine starts the local dev server, runs the
    call in a worker of its own (it holds the key) and prints the reply."""
    script = tmp_path / "my_workflow.py"
    script.write_text(QUICKSTART.format(path=ROOT / "definitions" / "hello_world.yaml"))
    env = {**stack_env, "OPENAI_BASE_URL": llm_server.openai_url}
    done = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("Hello from gpt-4")
    request = llm_server.requests[-1]
    assert request.headers["authorization"] == "Bearer your-key-here"


def test_the_readme_python_example_runs_as_written_with_no_network_and_no_key(
    stack_env, tmp_path: Path
):
    """The README's example, word for word, from the project's directory: its placeholder
    key sends the call to the offline mock, and the engine says so in one line."""
    readme = (ROOT / "README.md").read_text()
    example = readme.split("## From Python", 1)[1].split("```python\n", 1)[1].split("```")[0]
    assert 'WorkflowEngine(openai_api_key="your-key-here")' in example
    script = tmp_path / "example.py"
    script.write_text(example)
    done = subprocess.run(
        [sys.executable, str(script)], cwd=ROOT, env=stack_env, capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("[offline mock reply, model gpt-4]")
    assert "openai_api_key 'your-key-here' is a placeholder" in done.stderr
    assert "Traceback" not in done.stderr


WAITS = """
workflow:
  name: engine-api
  variables: {topic: {type: string}}
  steps:
    - {id: shout, type: action, action: shout, params: {text: "{{ topic }}"}, outputs: [loud]}
    - {id: ok, type: wait_for_signal, signal: approve, timeout: 3s, outputs: [answer]}
"""


async def test_actions_status_list_cancel_and_resume_have_the_seed_shapes(client):
    settings = dataclasses.replace(
        Settings.from_env({}),
        address=client.service_client.config.target_host,
        task_queue=f"engine-{uuid.uuid4()}",
    )
    calls: list[dict] = []

    async def shout(params: dict) -> str:
        calls.append(params)
        return params["text"].upper()

    async with WorkflowEngine(action_registry={"shout": shout}, settings=settings) as engine:
        with pytest.raises(Exception, match="no 'approve' signal within 3s"):
            await engine.execute_yaml(WAITS, variables={"topic": "stars"})
        [failed] = await engine.list_executions(workflow_name="engine-api", status="failed")
        assert set(failed) >= {"execution_id", "workflow_name", "status", "started_at"}
        status = await engine.get_execution_status(failed["execution_id"])
        assert status["status"] == "failed" and status["completed_steps"] == 1
        assert status["outputs"]["shout"] == {"loud": "STARS"}
        assert status["variables"] == {"topic": "stars"}

        resumed = asyncio.create_task(engine.resume_execution(failed["execution_id"]))
        client_ = await engine._connect()  # the same run, seen through the client API
        for _ in range(50):
            runs = await engine.list_executions(workflow_name="engine-api", status="running")
            if runs:
                break
            await asyncio.sleep(0.1)
        [running] = runs
        await client_.signal(running["execution_id"], "approve", {"answer": "yes"})
        result = await resumed
        assert result["status"] == "completed" and result["outputs"]["answer"] == "yes"
        assert len(calls) == 1  # the finished step was reused, not run again

        assert await engine.cancel_execution(result["execution_id"]) is False  # ended
