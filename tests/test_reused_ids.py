"""A run's id is never silently reused (engine/client.py): a second start under an id some run
has is refused over REST (409), the client API (RunExists) and the CLI (one line); asked for,
reuse gives each run its own idempotency keys and run folder (the chain's first run id)."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
import uuid
from pathlib import Path

import pytest
from temporalio.client import Client

from engine.client import EngineClient
from tests.conftest import ROOT, new_worker
from tests.test_actions import actions_for
from tests.test_rest_api import WAITS, Api, api, settings_for
from workflows.errors import RunExists

__all__ = ["api"]  # the REST test module's live API, shared

DAILY = """
workflow:
  name: daily
  variables: {day: {type: string}}
  steps:
    - id: store
      type: action
      action: database_insert
      params: {table: days, data: {day: "{{ day }}"}}
      outputs: [stored]
    - id: report
      type: action
      action: save_to_file
      params: {filename: report.md, data: "report of day {{ day }}"}
      outputs: [saved]
"""
QUICK = "workflow:\n  name: quick\n  steps:\n    - {id: a, type: set, values: {x: 1}}\n"


async def test_a_second_start_under_a_used_id_is_409_over_rest(api: Api):
    run_id = f"daily-{uuid.uuid4().hex[:8]}"
    async with api.http() as http:
        body = {"yaml": QUICK, "execution_id": run_id}
        assert (await http.post("/workflows/execute-yaml", json=body)).status_code == 200
        await api.engine.result(run_id)
        again = await http.post("/workflows/execute-yaml", json=body)
        assert again.status_code == 409, again.text
        assert again.json()["error"] == "conflict"
        assert f"a run with id '{run_id}' exists already (completed)" in again.json()["message"]
        assert "reuse_id" in again.json()["message"]
        reused = await http.post("/workflows/execute-yaml", json=body | {"reuse_id": True})
        assert reused.status_code == 200, reused.text
        await api.engine.result(run_id)
        waiting = {"yaml": WAITS, "execution_id": f"waits-{uuid.uuid4().hex[:8]}"}
        assert (await http.post("/workflows/execute-yaml", json=waiting)).status_code == 200
        for reuse in (False, True):  # a running run's id is never taken, asked or not
            busy = await http.post("/workflows/execute-yaml", json=waiting | {"reuse_id": reuse})
            assert busy.status_code == 409 and "is running" in busy.json()["message"]
        await api.engine.cancel(waiting["execution_id"])


async def test_reused_ids_give_each_run_its_own_row_and_report(client: Client, tmp_path: Path):
    run_id = f"daily-{uuid.uuid4().hex[:8]}"
    async with new_worker(client, {}, actions=actions_for(tmp_path)) as worker:
        settings = settings_for(client.service_client.config.target_host, worker.task_queue)
        engine = EngineClient(client, settings, start_worker=False)
        loaded = engine.load_yaml(DAILY)
        first = await engine.execute(loaded, {"day": "1"}, execution_id=run_id)
        with pytest.raises(RunExists) as refused:
            await engine.start(loaded, {"day": "2"}, execution_id=run_id)
        assert "\n" not in str(refused.value) and "exists already (completed)" in str(refused.value)
        second = await engine.execute(loaded, {"day": "2"}, execution_id=run_id, reuse_id=True)
        chain = (await client.get_workflow_handle(run_id).describe()).run_id

    with sqlite3.connect(tmp_path / "db.sqlite") as database:
        rows = database.execute("select day, idempotency_key from days order by day").fetchall()
    assert [day for day, _ in rows] == ["1", "2"]  # day 2 was not skipped as a repeat
    assert rows[0][1] != rows[1][1] and chain in rows[1][1]
    paths = [first.outputs["saved"]["path"], second.outputs["saved"]["path"]]
    assert paths == [f"runs/{run_id}/report.md", f"runs/{run_id}@{chain}/report.md"]
    out = tmp_path / "out"
    assert [(out / p).read_text() for p in paths] == ["report of day 1", "report of day 2"]


async def test_the_cli_refuses_a_used_id_in_one_line(client: Client, tmp_path: Path):
    run_id = f"quick-{uuid.uuid4().hex[:8]}"
    file = tmp_path / "quick.yaml"
    file.write_text(QUICK)
    async with new_worker(client, {}) as worker:
        env = {
            **os.environ,
            "TEMPORAL_ADDRESS": client.service_client.config.target_host,
            "TEMPORAL_TASK_QUEUE": worker.task_queue,
        }

        async def starter(*args: str) -> tuple[int, str, str]:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "starter.py", "start", str(file), "--id", run_id, *args,
                cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            out, err = await asyncio.wait_for(process.communicate(), 60)
            return process.returncode or 0, out.decode(), err.decode()

        code, out, _ = await starter()
        assert (code, out.strip()) == (0, run_id)
        await client.get_workflow_handle(run_id).result()
        code, out, err = await starter()
        assert code == 1 and out == ""
        assert err.strip().splitlines()[-1].startswith(f"error: a run with id '{run_id}' exists")
        assert "--reuse-id" in err and "Traceback" not in err
        code, out, err = await starter("--reuse-id")
        assert (code, out.strip()) == (0, run_id), err
        await client.get_workflow_handle(run_id).result()
