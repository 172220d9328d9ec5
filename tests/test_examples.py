"""Every example in definitions/ runs offline to completion with the mock provider."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import new_worker
from tests.examples import EXAMPLES, offline_actions, run_example


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
async def test_example_runs_offline(client, tmp_path: Path, path: Path):
    async with new_worker(client, {}, actions=offline_actions(tmp_path)) as worker:
        _, result = await run_example(client, worker.task_queue, path)
    assert result.status == "completed"
    assert all(step.status in ("completed", "skipped") for step in result.steps.values())
    assert result.outputs


async def test_research_brief_saves_the_brief(client, tmp_path: Path):
    path = Path(__file__).parent.parent / "definitions" / "research_brief.yaml"
    async with new_worker(client, {}, actions=offline_actions(tmp_path)) as worker:
        _, result = await run_example(client, worker.task_queue, path)
    assert len(result.outputs["notes"]) == 3
    saved = tmp_path / result.outputs["file"]
    assert saved.read_text() == result.outputs["brief"]
