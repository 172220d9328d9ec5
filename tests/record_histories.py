"""Record one history per example definition into tests/histories/, for the replay tests.

Re-record only deliberately (a change that is meant to alter histories), never to silence
a failing replay test: `python -m tests.record_histories`.
"""

from __future__ import annotations

import asyncio
import json
import uuid

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from activities.llm import Endpoint, build_providers
from tests.conftest import DEV_SERVER_ARGS, ROOT
from tests.fake_llm import FakeLlmServer
from worker import build_worker, temporal_cli
from workflows.contracts import RunInput
from workflows.interpreter import YamlWorkflow
from workflows.validation import load_definition

HISTORIES = ROOT / "tests" / "histories"


async def record() -> None:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli(),
        data_converter=pydantic_data_converter,
        dev_server_extra_args=DEV_SERVER_ARGS,
    )
    with FakeLlmServer() as llm:
        endpoints = {
            "openai": Endpoint(api_key="k", base_url=llm.openai_url),
            "anthropic": Endpoint(api_key="k", base_url=llm.anthropic_url),
        }
        worker = build_worker(env.client, "record", build_providers(endpoints), ROOT)
        async with worker:
            for path in sorted((ROOT / "definitions").glob("*.yaml")):
                definition = load_definition(path.read_text(), path.name)
                handle = await env.client.start_workflow(
                    YamlWorkflow.run,
                    RunInput(definition=definition),
                    id=f"record-{path.stem}-{uuid.uuid4().hex[:8]}",
                    task_queue="record",
                )
                await handle.result()
                history = await handle.fetch_history()
                target = HISTORIES / f"{path.stem}.json"
                target.write_text(json.dumps(json.loads(history.to_json()), indent=1) + "\n")
                print(f"recorded {target.relative_to(ROOT)}")
    await env.shutdown()


if __name__ == "__main__":
    asyncio.run(record())
