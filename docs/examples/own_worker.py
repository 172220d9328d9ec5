"""The engine in a Temporal worker of your own (docs/extending.md). From the project's
folder, with a Temporal server listening: `python -m docs.examples.own_worker`."""

from __future__ import annotations

import asyncio
import uuid

from temporalio.client import Client
from temporalio.worker import Worker

from engine.plugin import EnginePlugin
from engine.settings import Settings
from workflows.contracts import RunInput, RunResult
from workflows.interpreter import YamlWorkflow


async def main(address: str = "localhost:7233", task_queue: str = "my-team") -> RunResult:
    # Providers, actions, storage and pacing from the environment, as worker.py reads them.
    plugin = EnginePlugin(Settings.from_env())
    # The client takes the engine's data converter; each worker built from it, the engine.
    client = await Client.connect(address, plugins=[plugin])
    # Your own workflows=[...] and activities=[...] go here too, beside the engine's.
    async with Worker(client, task_queue=task_queue):
        return await client.execute_workflow(
            YamlWorkflow.run,
            # mock_providers answers offline; leave it out to call OpenAI with OPENAI_API_KEY.
            RunInput(definition_file="definitions/hello_world.yaml", mock_providers=["openai"]),
            id=f"hello-{uuid.uuid4()}",
            task_queue=task_queue,
        )


if __name__ == "__main__":
    print(asyncio.run(main()).outputs["greeting"])
