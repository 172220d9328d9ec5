"""Record one history per example definition into tests/histories/, for the replay tests,
and the first run of a run that continues as new (tests/histories/continued/).

Re-record only deliberately (a change that is meant to alter histories), never to silence
a failing replay test: `python -m tests.record_histories`.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections.abc import Mapping
from pathlib import Path

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.llm import build_providers
from activities.registry import ActionSpec
from engine.local_stack import TUNED_SERVER_FLAGS, temporal_cli
from engine.plugin import EnginePlugin
from engine.settings import Settings
from tests.examples import EXAMPLES, LONG, ROOT, SMALL_HISTORIES, offline_actions, run_example
from workflows import search_attributes
from workflows.contracts import RunInput
from workflows.interpreter import YamlWorkflow
from workflows.validation import load_definition

HISTORIES = ROOT / "tests" / "histories"


def recording_worker(client: Client, actions: Mapping[str, ActionSpec] | None = None) -> Worker:
    """The engine's worker, offline: only the mock provider, and only the actions given."""
    plugin = EnginePlugin(
        Settings(definitions_dir=ROOT),
        providers=build_providers({}),
        actions=actions or {},
        validators={},
    )
    return Worker(client, task_queue="record", plugins=[plugin])


async def record() -> None:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli(),
        data_converter=pydantic_data_converter,
        dev_server_extra_args=TUNED_SERVER_FLAGS,
        search_attributes=search_attributes.ALL,
    )
    with tempfile.TemporaryDirectory() as output:
        actions = offline_actions(Path(output))
        async with recording_worker(env.client, actions):
            for path in EXAMPLES:
                # The file's stem is the run's workflow id, which replay needs.
                handle, _ = await run_example(env.client, "record", path, path.stem)
                history = await handle.fetch_history()
                target = HISTORIES / f"{path.stem}.json"
                target.write_text(json.dumps(json.loads(history.to_json()), indent=1) + "\n")
                print(f"recorded {target.relative_to(ROOT)}")
    await env.shutdown()


async def record_continued() -> None:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli(),
        data_converter=pydantic_data_converter,
        dev_server_extra_args=[*TUNED_SERVER_FLAGS, *SMALL_HISTORIES],
        search_attributes=search_attributes.ALL,
    )
    async with recording_worker(env.client):
        run_input = RunInput(
            definition=load_definition(LONG, "long.yaml"), mock_providers=["openai"]
        )
        handle = await env.client.start_workflow(
            YamlWorkflow.run, run_input, id="continued", task_queue="record"
        )
        await handle.signal("approve", {"ok": "yes"})
        await handle.result()
        first = env.client.get_workflow_handle("continued", run_id=handle.result_run_id)
        history = await first.fetch_history()
    target = HISTORIES / "continued" / "continued.json"
    target.parent.mkdir(exist_ok=True)
    target.write_text(json.dumps(json.loads(history.to_json()), indent=1) + "\n")
    print(f"recorded {target.relative_to(ROOT)}")
    await env.shutdown()


if __name__ == "__main__":
    asyncio.run(record())
    asyncio.run(record_continued())
