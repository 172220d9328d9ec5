"""A run's progress as Server-Sent Events, read from its `status` query: one event when a
step is seen running, one when it finishes or fails (with the run's tokens and cost so far),
`text` events with each piece of a reply while it streams (read from the call's heartbeats,
never from history), and a last `end` event with the result or the failure. Steps that
started and finished between two looks report only their end; a run already ended replays
its steps at once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from temporalio.service import RPCError

from engine.client import EngineClient, ExecutionStatus
from engine.rest_models import EndEvent, StepEvent, TextEvent
from workflows.errors import RunFailed, StatusUnavailable

POLL_SECONDS = 0.5
KEEPALIVE_SECONDS = 15.0
"""A comment line this often keeps proxies from closing a quiet stream."""


def sse(number: int, event: str, data: StepEvent | EndEvent | TextEvent) -> str:
    return f"id: {number}\nevent: {event}\ndata: {data.model_dump_json(exclude_none=True)}\n\n"


async def progress(
    client: EngineClient, execution_id: str, poll_seconds: float = POLL_SECONDS
) -> AsyncIterator[str]:
    """The run's events as SSE text, until the run ends."""
    started: set[str] = set()
    finished: set[str] = set()
    shown: dict[str, int] = {}
    number = 0
    quiet_since = time.monotonic()
    while True:
        try:
            status = await client.status(execution_id)
        except (StatusUnavailable, RPCError, RuntimeError):  # no worker, server away: later
            status = None
        if status is not None:
            for event, data in [
                *_step_events(status, started, finished),
                *_text_events(status, shown),
            ]:
                number += 1
                quiet_since = time.monotonic()
                yield sse(number, event, data)
            if status.execution_status != "running":
                yield sse(number + 1, "end", await _end(client, status))
                return
        if time.monotonic() - quiet_since > KEEPALIVE_SECONDS:
            quiet_since = time.monotonic()
            yield ": keep-alive\n\n"
        await asyncio.sleep(poll_seconds)


def _step_events(
    status: ExecutionStatus, started: set[str], finished: set[str]
) -> list[tuple[str, StepEvent]]:
    so_far = {
        "steps_done": len(status.steps),
        "total_steps": status.total_steps,
        "usage": status.usage,
    }
    events = []
    for step_id in status.running:
        if step_id not in started and step_id not in finished:
            started.add(step_id)
            events.append(("step_started", StepEvent(step=step_id, **so_far)))
    for step_id, step in status.steps.items():
        if step_id in finished:
            continue
        finished.add(step_id)
        data = StepEvent(
            step=step_id,
            status=step.status,
            attempts=step.attempts,
            duration_ms=step.duration_ms,
            step_usage=step.usage,
            error=step.error,
            **so_far,
        )
        events.append(("step_failed" if step.status == "failed" else "step_finished", data))
    return events


def _text_events(status: ExecutionStatus, shown: dict[str, int]) -> list[tuple[str, TextEvent]]:
    """The pieces of each streaming reply not sent yet (`shown`: characters sent, by call)."""
    events = []
    for piece in status.streaming:
        start = max(shown.get(piece.activity_id, 0), piece.offset)
        new = piece.text[start - piece.offset :]
        shown[piece.activity_id] = piece.offset + len(piece.text)
        if new:
            events.append(("text", TextEvent(step=piece.step, text=new)))
    return events


async def _end(client: EngineClient, status: ExecutionStatus) -> EndEvent:
    end = EndEvent(
        execution_id=status.execution_id,
        status=status.execution_status,
        outputs=status.outputs,
        usage=status.usage,
    )
    try:
        result = await client.result(status.execution_id)
    except RunFailed as exc:
        end.error = exc.reason
    except (RPCError, RuntimeError) as exc:  # the status above still says how it ended
        end.error = f"the result could not be read: {exc}"
    else:
        end.outputs, end.usage = result.outputs, result.usage
    return end
