"""Approvals that answer back: a step's signal sent as an update is checked against the
step's declared outputs and refused to its sender when it does not fit; a plain signal that
does not fit is dropped and recorded in `status`. Either way the step keeps waiting."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid

import pytest

from engine.client import EngineClient
from engine.client_models import ExecutionStatus
from engine.settings import Settings
from tests.conftest import new_worker
from workflows.errors import SignalRefused

APPROVAL = """
workflow:
  name: approval
  steps:
    - id: review
      type: wait_for_signal
      signal: approve
      outputs:
        - {name: approved, type: boolean}
        - {name: level, type: string, enum: [low, high]}
    - id: publish
      type: set
      when: "{{ approved }}"
      values: {published: true}
"""


async def waiting_run(client, worker) -> tuple[EngineClient, str]:
    settings = dataclasses.replace(
        Settings.from_env({}),
        address=client.service_client.config.target_host,
        task_queue=worker.task_queue,
    )
    engine = EngineClient(client, settings, start_worker=False)
    started = await engine.start(engine.load_yaml(APPROVAL), execution_id=f"a-{uuid.uuid4()}")
    for _ in range(50):
        if (await engine.status(started.execution_id)).running == ["review"]:
            break
        await asyncio.sleep(0.1)
    return engine, started.execution_id


async def rejection(engine: EngineClient, run_id: str) -> ExecutionStatus:
    """The run's status once it has rejected a signal (or after 5 s)."""
    for _ in range(50):
        status = await engine.status(run_id)
        if status.rejected_signals:
            break
        await asyncio.sleep(0.1)
    return status


async def test_an_invalid_approval_is_refused_to_its_sender_and_the_run_keeps_waiting(client):
    async with new_worker(client, {}) as worker:
        engine, run_id = await waiting_run(client, worker)
        with pytest.raises(SignalRefused, match="'approved' must be a boolean, not 'false'"):
            await engine.signal(run_id, "approve", {"approved": "false"})
        with pytest.raises(SignalRefused, match="'level' must be one of 'low', 'high'"):
            await engine.signal(run_id, "approve", {"approved": True, "level": "urgent"})
        with pytest.raises(SignalRefused, match=r"no step waits for 'aprove'"):
            await engine.signal(run_id, "aprove", {"approved": True})
        assert (await engine.status(run_id)).running == ["review"]
        answered = await engine.signal(run_id, "approve", {"approved": False, "level": "low"})
        assert answered.answer == "accepted by step 'review'"
        result = await engine.result(run_id)
    assert result.steps["review"].outputs == {"approved": False, "level": "low"}
    assert result.steps["publish"].status == "skipped"  # "false" as text would have published


async def test_a_plain_signal_that_does_not_fit_is_dropped_and_recorded(client):
    async with new_worker(client, {}) as worker:
        engine, run_id = await waiting_run(client, worker)
        handle = client.get_workflow_handle(run_id)
        await handle.signal("approve", {"approved": "yes"})  # as the Temporal CLI would send it
        status = await rejection(engine, run_id)
        assert status.rejected_signals == ["approve: 'approved' must be a boolean, not 'yes'"]
        assert status.running == ["review"]
        await handle.signal("approve", {"approved": True})
        result = await engine.result(run_id)
    assert result.steps["publish"].outputs == {"published": True}


async def test_an_approvals_text_is_data(client):
    hostile = "{{ secrets.OPENAI_API_KEY }} {% for a in range(99999) %}{% for b in range(99999) %}x{% endfor %}{% endfor %}"  # noqa: E501
    async with new_worker(client, {}) as worker:
        engine, run_id = await waiting_run(client, worker)
        await engine.signal(run_id, "approve", {"approved": False, "note": hostile})
        result = await engine.result(run_id)
    assert result.steps["review"].outputs["note"] == hostile


async def test_a_signal_sent_with_the_start_is_checked_like_a_later_one(client):
    """Sent with the start (signal-with-start, or any signal that beats the run's first
    task), it arrives before the definition is known: it was kept unchecked, so whether
    `{"approved": "yes"}` passed depended on timing. Now it is checked once it is known."""
    from workflows.contracts import RunInput
    from workflows.interpreter import YamlWorkflow
    from workflows.validation import load_definition

    async with new_worker(client, {}) as worker:
        handle = await client.start_workflow(
            YamlWorkflow.run,
            RunInput(definition=load_definition(APPROVAL, "approval.yaml")),
            id=f"early-{uuid.uuid4()}",
            task_queue=worker.task_queue,
            start_signal="approve",
            start_signal_args=[{"approved": "yes"}],
        )
        settings = dataclasses.replace(
            Settings.from_env({}),
            address=client.service_client.config.target_host,
            task_queue=worker.task_queue,
        )
        engine = EngineClient(client, settings, start_worker=False)
        status = await rejection(engine, handle.id)
        assert status.rejected_signals == ["approve: 'approved' must be a boolean, not 'yes'"]
        assert status.running == ["review"]
        await handle.signal("approve", {"approved": True})
        result = await engine.result(handle.id)
    assert result.steps["publish"].outputs == {"published": True}
