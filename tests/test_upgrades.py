"""The two-build upgrade test (engine/versioning.py): build A and build B of the interpreter
poll one task queue side by side as two builds of one Worker Deployment. A run waiting for
approval, started on A, finishes on A after B becomes current; new runs go to B; and B could
not have replayed A's run, which is why runs stay pinned."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.worker import Replayer, Worker
from temporalio.workflow import NondeterminismError

from engine.client import EngineClient
from engine.plugin import EnginePlugin
from engine.settings import Settings
from engine.versioning import current_build, deployment_config, set_current_build
from tests.build_b_workflow import BuildBWorkflow
from tests.conftest import ROOT, new_worker
from workflows.errors import UsageError

WAITS = """
workflow:
  name: upgrade-waits
  steps:
    - {id: ok, type: wait_for_signal, signal: approve, outputs: [answer]}
    - {id: after, type: set, values: {line: "approved: {{ answer }}"}}
"""


async def until(attempt: Callable[[], Awaitable[Any]], seconds: float = 20.0) -> Any:
    """`attempt` again until it neither raises an RPCError nor returns a falsy value."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        try:
            found = await attempt()
            if found:
                return found
        except RPCError:
            if asyncio.get_running_loop().time() > deadline:
                raise
        if asyncio.get_running_loop().time() > deadline:
            return found
        await asyncio.sleep(0.2)


async def build_of(client: Client, run_id: str) -> str:
    described = await client.get_workflow_handle(run_id).describe()
    versioning = described.raw_description.workflow_execution_info.versioning_info
    return versioning.deployment_version.build_id


async def test_a_waiting_run_finishes_on_its_build_while_new_runs_go_to_the_next(client: Client):
    deployment = f"upgrade-{uuid.uuid4().hex[:8]}"
    queue = f"test-{uuid.uuid4()}"
    settings = dataclasses.replace(
        Settings.from_env({}),
        address=client.service_client.config.target_host,
        task_queue=queue,
        definitions_dir=ROOT,
        worker_deployment=deployment,
    )
    engine = EngineClient(client, settings, start_worker=False)
    namespace = settings.namespace

    def build(name: str) -> Any:
        return deployment_config(dataclasses.replace(settings, worker_build_id=name))

    async def make_current(name: str) -> bool:  # once the build's pollers have registered it
        await set_current_build(client, namespace, deployment, name)
        return True

    async with new_worker(client, {}, task_queue=queue, deployment_config=build("A")):
        await until(lambda: make_current("A"))
        assert await current_build(client, namespace, deployment) == "A"
        old = await engine.start(engine.load_yaml(WAITS, "waits.yaml"))
        assert await until(lambda: build_of(client, old.execution_id)) == "A"

        plugin = EnginePlugin(
            settings, workflow=BuildBWorkflow, providers={}, actions={}, validators={}
        )
        async with Worker(client, task_queue=queue, plugins=[plugin], deployment_config=build("B")):
            await until(lambda: make_current("B"))
            assert await current_build(client, namespace, deployment) == "B"
            new = await engine.start(engine.load_yaml(WAITS, "waits.yaml"))
            assert await until(lambda: build_of(client, new.execution_id)) == "B"

            for run in (old, new):
                await engine.signal(run.execution_id, "approve", {"answer": run.execution_id})
                result = await engine.result(run.execution_id)
                assert result.outputs["line"] == f"approved: {run.execution_id}"
            assert await build_of(client, old.execution_id) == "A"

    async def on_a() -> list[str]:  # the query docs/operations.md drains a build with
        query = f"TemporalWorkerDeploymentVersion = '{deployment}:A'"
        return [run.id async for run in client.list_workflows(query)]

    assert await until(on_a) == [old.execution_id]

    old_history = await client.get_workflow_handle(old.execution_id).fetch_history()
    new_history = await client.get_workflow_handle(new.execution_id).fetch_history()
    timers = EventType.EVENT_TYPE_TIMER_STARTED
    assert not [e for e in old_history.events if e.event_type == timers]  # A's interpreter
    assert [e for e in new_history.events if e.event_type == timers]  # B's
    builds = {
        e.workflow_task_completed_event_attributes.deployment_version.build_id
        for e in old_history.events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
    }
    assert builds == {"A"}, "a task of the old run was completed by another build"
    with pytest.raises(NondeterminismError):  # what pinning saved it from
        replayer = Replayer(workflows=[], plugins=[EnginePlugin(settings, workflow=BuildBWorkflow)])
        await replayer.replay_workflow(old_history)


def test_a_half_configured_build_is_refused_in_one_line():
    with pytest.raises(UsageError, match="set both WORKER_DEPLOYMENT_NAME and WORKER_BUILD_ID"):
        deployment_config(Settings(worker_deployment="llm-workflows"))
    with pytest.raises(UsageError, match="take no '.'"):
        deployment_config(Settings(worker_deployment="a.b", worker_build_id="1"))
    assert deployment_config(Settings()) is None
