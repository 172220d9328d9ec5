"""Plain Temporal: the same chain and fan-out written directly as Temporal workflows, one
activity per model call, no YAML, no templates. What Temporal itself costs on this machine,
so the engine's own overhead can be read apart from the platform's.

Only temporalio is imported here: the sandbox re-imports this module for every run.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow

CALL = "plain_call"
TIMEOUT = timedelta(seconds=60)


@workflow.defn
class PlainChain:
    @workflow.run
    async def run(self, steps: int) -> str:
        text = ""
        for index in range(steps):
            text = await workflow.execute_activity(
                CALL, f"step {index}", start_to_close_timeout=TIMEOUT
            )
        return text


@workflow.defn
class PlainFanout:
    @workflow.run
    async def run(self, items: int) -> list[str]:
        calls = (
            workflow.execute_activity(CALL, f"item {index}", start_to_close_timeout=TIMEOUT)
            for index in range(items)
        )
        return list(await asyncio.gather(*calls))
