"""Build B of the interpreter for the two-build upgrade test (tests/test_upgrades.py): it
sets a timer before every run, a command no history of build A has, so replaying an open
run of build A on it is nondeterministic. Only pinning keeps those runs on build A."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow

from workflows.contracts import RunResult
from workflows.interpreter import YamlWorkflow


@workflow.defn(name="YamlWorkflow")
class BuildBWorkflow(YamlWorkflow):
    @workflow.run
    async def run(self, raw_input: Any) -> RunResult:
        await workflow.sleep(timedelta(milliseconds=1))
        return await super().run(raw_input)
