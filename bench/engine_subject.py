"""The engine as a bench subject: the definitions the scenarios run (a chain, a fan-out),
parsed once as a starter would, started as YamlWorkflow runs on a worker built from the
engine's plugin, and timed."""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

from activities.endpoints import Endpoint
from activities.llm import build_providers
from activities.rate_limits import Pacer
from bench.stack import ROOT
from engine.plugin import EnginePlugin
from engine.settings import Settings
from workflows.contracts import RunInput
from workflows.definition import Definition
from workflows.interpreter import YamlWorkflow
from workflows.validation import load_definition

Start = Callable[[str, str, int], Awaitable[WorkflowHandle[Any, Any]]]
"""Starts one run: (run id, "chain" or "fanout", size) -> its handle."""


def chain(steps: int) -> str:
    lines = ["workflow:", "  name: Chain", "  defaults: {model: gpt-4o-mini}", "  steps:"]
    lines += [f"    - {{id: s{i}, type: llm_call, prompt: 'step {i}'}}" for i in range(steps)]
    return "\n".join(lines) + "\n"


def fanout(items: int) -> str:
    return f"""
workflow:
  name: Fanout
  steps:
    - {{id: each, type: llm_call, model: gpt-4o-mini, for_each: "{{{{ range({items}) | list }}}}",
       concurrency: {items}, prompt: "item {{{{ item }}}}"}}
"""


class Engine:
    """Starts YamlWorkflow runs of the bench's definitions (parsed once, as a starter would)."""

    def __init__(self, client: Client, queue: str, pacer: Pacer | None = None):
        self.client, self.queue, self.pacer = client, queue, pacer
        self._parsed: dict[tuple[str, int], Definition] = {}

    def worker(self, base_url: str) -> Any:
        providers = build_providers({"openai": Endpoint(api_key="k", base_url=base_url)})
        settings = Settings(definitions_dir=ROOT)
        plugin = EnginePlugin(
            settings, providers=providers, actions={}, validators={}, pacer=self.pacer
        )
        return Worker(
            self.client, task_queue=self.queue, plugins=[plugin], max_concurrent_activities=200
        )

    async def start(self, run_id: str, kind: str, size: int) -> WorkflowHandle[Any, Any]:
        if (kind, size) not in self._parsed:
            text = chain(size) if kind == "chain" else fanout(size)
            self._parsed[kind, size] = load_definition(text, "bench.yaml")
        run_input = RunInput(definition=self._parsed[kind, size])
        return await self.client.start_workflow(
            YamlWorkflow.run, run_input, id=run_id, task_queue=self.queue
        )


async def timed(start: Start, kind: str, size: int) -> float:
    started = time.perf_counter()
    handle = await start(f"bench-{uuid.uuid4()}", kind, size)
    await handle.result()
    return (time.perf_counter() - started) * 1000
