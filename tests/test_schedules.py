"""Schedules (engine/schedules.py, `starter.py schedule ...`) on the session's dev server: runs
start on time, pause, trigger and delete work, and a bad schedule is refused in one line
with nothing created."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client

from engine.client import EngineClient
from engine.settings import Settings
from tests.conftest import ROOT, new_worker
from workflows.errors import DefinitionError, RunNotFound, UsageError, VariablesError

TICK = """
workflow:
  name: tick
  variables: {who: {type: string, default: World}, times: {type: integer, default: 1}}
  steps:
    - {id: say, type: set, values: {line: "Hello {{ who }} x{{ times }}"}}
"""


async def cli(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "starter.py", *args, cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def engine_for(client: Client, task_queue: str) -> EngineClient:
    address = client.service_client.config.target_host
    settings = dataclasses.replace(
        Settings.from_env({}), address=address, task_queue=task_queue, definitions_dir=ROOT
    )
    return EngineClient(client, settings, start_worker=False)


def cli_env(client: Client, task_queue: str, dev_dir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "TEMPORAL_ADDRESS": client.service_client.config.target_host,
        "TEMPORAL_TASK_QUEUE": task_queue,
        "TEMPORAL_DEV_DIR": str(dev_dir),
    }


async def wait_for(check: Any, seconds: float = 20.0) -> Any:
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        found = await check()
        if found or asyncio.get_running_loop().time() > deadline:
            return found
        await asyncio.sleep(0.25)


async def test_a_schedule_from_the_cli_runs_on_time_and_pauses_triggers_and_deletes(
    client: Client, tmp_path: Path
):
    file = tmp_path / "tick.yaml"
    file.write_text(TICK)
    name = f"tick-{uuid.uuid4().hex[:8]}"
    async with new_worker(client, {}) as worker:
        env = cli_env(client, worker.task_queue, tmp_path)
        engine = engine_for(client, worker.task_queue)
        code, out, err = await cli(
            env, "schedule", "create", name, str(file), "--every", "2s", "--var", "who=Ada",
            "--json",
        )  # fmt: skip
        assert code == 0, err
        created = json.loads(out)
        assert created["workflow_name"] == "tick" and created["when"] == "every 2s"
        assert created["overlap"] == "skip" and created["catchup_window"] == "1m"
        assert not created["paused"] and created["next_runs"]
        file.write_text("workflow: {name: tick, steps: [{id: say, type: teleport}]}")  # later edits

        async def two_runs() -> list:
            view = await engine.schedules.describe(name)
            return view.recent_runs if len(view.recent_runs) >= 2 else []

        runs = await wait_for(two_runs, 15)
        assert len(runs) >= 2, "the schedule did not start two runs in 15 s"
        gap = (runs[1].scheduled_at - runs[0].scheduled_at).total_seconds()
        assert gap == pytest.approx(2, abs=0.5)
        for run in runs[:2]:  # on time, each running what was validated, with its variable
            assert (run.started_at - run.scheduled_at).total_seconds() < 2
            assert run.execution_id.startswith(f"{name}-")
            result = await engine.result(run.execution_id)
            assert result.outputs["line"] == "Hello Ada x1"

        code, out, err = await cli(env, "schedule", "pause", name, "--note", "maintenance")
        assert code == 0, err
        assert "paused" in out and "maintenance" in out
        paused = await engine.schedules.describe(name)
        await asyncio.sleep(3)
        assert (await engine.schedules.describe(name)).runs_started == paused.runs_started

        code, out, err = await cli(env, "schedule", "trigger", name)
        assert code == 0, err

        async def triggered() -> bool:
            view = await engine.schedules.describe(name)
            return view.runs_started == (paused.runs_started or 0) + 1

        assert await wait_for(triggered, 10), "trigger started no run on the paused schedule"

        [listed] = [view for view in await engine.schedules.list() if view.name == name]
        assert listed.paused and listed.workflow_name == "tick"
        code, out, err = await cli(env, "schedule", "delete", name)
        assert code == 0, err
        code, out, err = await cli(env, "schedule", "describe", name)
        assert code == 1 and err.strip().splitlines() == [
            f"error: no schedule {name!r} in namespace default (starter.py schedule list shows "
            "them)"
        ]
        with pytest.raises(RunNotFound):
            await engine.schedules.describe(name)


async def test_a_bad_schedule_is_refused_in_one_line_and_nothing_is_created(
    client: Client, tmp_path: Path
):
    engine = engine_for(client, f"unused-{uuid.uuid4()}")
    schedules = engine.schedules
    loaded = engine.load_yaml(TICK, "tick.yaml")
    name = f"bad-{uuid.uuid4().hex[:8]}"
    refused: list[tuple[dict[str, Any], type[Exception], str]] = [
        ({"cron": "61 * * * *"}, UsageError, "cron '61 * * * *' does not parse: Minute is not"),
        ({"cron": "every day"}, UsageError, "does not parse: CronString does not have 5-7"),
        ({"every": "soon"}, UsageError, "every: invalid duration 'soon'"),
        ({"every": "0s"}, UsageError, "at most once a second"),
        ({"every": "1m", "cron": "* * * * *"}, UsageError, "not both"),
        ({"every": "1m", "overlap": "stack"}, UsageError, "overlap 'stack': use one of skip"),
        ({"every": "1m", "variables": {"times": "many"}}, VariablesError, "times"),
        ({"every": "1m", "variables": {"whom": "x"}}, VariablesError, "did you mean 'who'"),
    ]
    for options, error, words in refused:
        variables = options.pop("variables", None)
        with pytest.raises(error) as caught:
            await schedules.create(name, loaded, variables, **options)
        assert words in str(caught.value) and "\n" not in str(caught.value), caught.value
    with pytest.raises(UsageError, match="schedule name 'a b'"):
        await schedules.create("a b", loaded, every="1m")
    with pytest.raises(DefinitionError):
        await schedules.create(name, engine.load_yaml("workflow: {name: x, steps: [{id: a}]}"))
    with pytest.raises(RunNotFound):
        await schedules.describe(name)  # none of the above created it

    await schedules.create(name, loaded, every="1h", paused=True)
    try:
        with pytest.raises(UsageError, match=f"a schedule named '{name}' exists already"):
            await schedules.create(name, loaded, every="1m")
        assert (await schedules.describe(name)).when == "every 1h"  # the first one stands
    finally:
        await schedules.delete(name)

    env = cli_env(client, engine.settings.task_queue, tmp_path)
    (tmp_path / "tick.yaml").write_text(TICK)
    code, out, err = await cli(
        env, "schedule", "create", name, str(tmp_path / "tick.yaml"), "--cron", "0 25 * * *"
    )
    assert code == 1 and out == ""
    assert err.strip().splitlines() == [
        "error: cron '0 25 * * *' does not parse: Hour is not in range [0-23] (five fields: "
        'minute hour day-of-month month day-of-week, e.g. "0 9 * * 1-5")'
    ]
