"""Stored histories must replay with today's code: a change that would break running
workflows fails here. Histories come from tests/record_histories.py."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner
from temporalio.workflow import NondeterminismError

from engine.plugin import workflow_runner
from tests.conftest import ROOT
from workflows.contracts import RunInput, RunResult
from workflows.interpreter import YamlWorkflow

HISTORIES = sorted((ROOT / "tests" / "histories").glob("*.json"))
OLDER = sorted((ROOT / "tests" / "histories").glob("*/*.json"))
"""Histories recorded by earlier versions (one folder per change of command order), kept so
runs started before an upgrade still finish after it."""


def test_every_example_definition_has_a_recorded_history():
    examples = {
        path.stem
        for path in (ROOT / "definitions").glob("*.yaml")
        if not path.name.endswith(".test.yaml")
    }
    assert examples == {path.stem for path in HISTORIES}


@pytest.mark.parametrize(
    "path", HISTORIES + OLDER, ids=lambda p: str(p.relative_to(ROOT / "tests" / "histories"))
)
async def test_history_replays(path: Path):
    replayer = Replayer(
        workflows=[YamlWorkflow],
        data_converter=pydantic_data_converter,
        workflow_runner=workflow_runner(),
    )
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    await replayer.replay_workflow(history)


@workflow.defn(name="YamlWorkflow")
class ChangedYamlWorkflow:
    """A 'refactor' that loads the definition through an activity it never used before."""

    @workflow.run
    async def run(self, run_input: RunInput) -> RunResult:
        await workflow.execute_activity(
            "load_definition", {"path": "x"}, start_to_close_timeout=timedelta(seconds=1)
        )
        raise AssertionError("unreachable on replay")


async def test_a_nondeterministic_change_is_caught():
    replayer = Replayer(
        workflows=[ChangedYamlWorkflow],
        data_converter=pydantic_data_converter,
        workflow_runner=UnsandboxedWorkflowRunner(),
    )
    path = ROOT / "tests" / "histories" / "hello_world.json"
    with pytest.raises(NondeterminismError):
        await replayer.replay_workflow(WorkflowHistory.from_json("hello", path.read_text()))
