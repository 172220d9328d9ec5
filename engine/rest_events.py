"""A run's progress as Server-Sent Events, read from its `status` query: one event when a
step is seen running, one when it finishes or fails (with the run's tokens and cost so far),
`text` events with each piece of a reply while it streams (read from the call's heartbeats,
never from history), and a last `end` event with the result or the failure. Steps that
started and finished between two looks report only their end; a run already ended replays
its steps at once.

However many streams watch a run, one poll reads its status (`StatusHub`), and the open
streams are capped per token and in all (`StreamSlots`, API_MAX_STREAMS_PER_TOKEN and
API_MAX_STREAMS): watching costs the server one query per run, never one per viewer."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import Request
from fastapi.responses import StreamingResponse

from engine.client import EngineClient
from engine.client_models import ExecutionStatus
from engine.rest_errors import ApiError
from engine.rest_models import EndEvent, StepEvent, TextEvent
from workflows.errors import RunFailed, StatusUnavailable, TemporalError, WorkflowError

POLL_SECONDS = 0.5
KEEPALIVE_SECONDS = 15.0
"""A comment line this often keeps proxies from closing a quiet stream."""
STREAM_RETRY_AFTER_SECONDS = 10
"""What a 429 for a stream over the cap asks to wait: streams end when runs do."""
Unreachable = (StatusUnavailable, TemporalError, RuntimeError)
"""No worker, server away: look again later."""


def sse(number: int, event: str, data: StepEvent | EndEvent | TextEvent) -> str:
    return f"id: {number}\nevent: {event}\ndata: {data.model_dump_json(exclude_none=True)}\n\n"


class StreamSlots:
    """How many event streams are open, per token and in all: a stream past either cap is
    refused (429) instead of adding a connection the server must keep."""

    def __init__(self, per_token: int, overall: int) -> None:
        self.per_token = per_token
        self.overall = overall
        self.open: dict[str, int] = {}

    def refusal(self, token: str) -> str | None:
        """Take a slot for `token`; None if one was free, else why not."""
        if sum(self.open.values()) >= self.overall:
            return f"too many event streams open ({self.overall}, API_MAX_STREAMS)"
        if self.open.get(token, 0) >= self.per_token:
            return (
                f"too many event streams open for this token ({self.per_token}, "
                "API_MAX_STREAMS_PER_TOKEN)"
            )
        self.open[token] = self.open.get(token, 0) + 1
        return None

    def give_back(self, token: str) -> None:
        left = self.open.get(token, 0) - 1
        if left > 0:
            self.open[token] = left
        else:
            self.open.pop(token, None)


class Watch:
    """One run's status, read by one poll however many streams watch it: each poll bumps
    `version` and wakes every stream; an ended run's `end` is read once for them all."""

    def __init__(self, client: EngineClient, execution_id: str, poll_seconds: float) -> None:
        self.client = client
        self.execution_id = execution_id
        self.poll_seconds = poll_seconds
        self.status: ExecutionStatus | None = None
        self.end: EndEvent | None = None
        self.failed = False
        """The poll stopped on an error it cannot wait out (the run is gone, say)."""
        self.version = 0
        self.viewers = 0
        self.task: asyncio.Task[None] | None = None
        self._changed = asyncio.Condition()

    async def changed(self, seen: int, timeout: float) -> int:
        """The version after `seen`, or `seen` when `timeout` passes first."""
        async with self._changed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._changed.wait_for(lambda: self.version != seen), max(timeout, 0.0)
                )
            return self.version

    async def poll(self) -> None:
        try:
            while True:
                try:
                    status = await self.client.status(self.execution_id)
                except Unreachable:
                    status = None
                if status is not None:
                    end = None
                    if status.execution_status != "running":
                        end = await _end(self.client, status)
                    await self._publish(status, end)
                    if end is not None:
                        return
                await asyncio.sleep(self.poll_seconds)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - every stream of the run ends, the server goes on
            self.failed = True
            await self._publish(self.status, None)

    async def _publish(self, status: ExecutionStatus | None, end: EndEvent | None) -> None:
        async with self._changed:
            self.status, self.end = status, end
            self.version += 1
            self._changed.notify_all()


class StatusHub:
    """The runs some stream watches, each polled once for all of its streams; a run's poll
    stops when its last stream closes."""

    def __init__(self, poll_seconds: float = POLL_SECONDS) -> None:
        self.poll_seconds = poll_seconds
        self.watches: dict[str, Watch] = {}

    @contextlib.asynccontextmanager
    async def watch(self, client: EngineClient, execution_id: str) -> AsyncIterator[Watch]:
        watch = self.watches.get(execution_id)
        if watch is None:
            watch = self.watches[execution_id] = Watch(client, execution_id, self.poll_seconds)
        watch.viewers += 1
        if watch.task is None:
            watch.task = asyncio.create_task(watch.poll(), name=f"status of {execution_id}")
        try:
            yield watch
        finally:
            watch.viewers -= 1
            if watch.viewers == 0:
                self.watches.pop(execution_id, None)
                watch.task.cancel()


async def progress(hub: StatusHub, client: EngineClient, execution_id: str) -> AsyncIterator[str]:
    """The run's events as SSE text, until the run ends."""
    started: set[str] = set()
    finished: set[str] = set()
    shown: dict[str, int] = {}
    number = 0
    seen = 0
    quiet_since = time.monotonic()
    async with hub.watch(client, execution_id) as watch:
        while True:
            left = KEEPALIVE_SECONDS - (time.monotonic() - quiet_since)
            version = await watch.changed(seen, left)
            if version == seen:
                quiet_since = time.monotonic()
                yield ": keep-alive\n\n"
                continue
            seen = version
            status = watch.status
            if status is not None:
                events: list[tuple[str, StepEvent | TextEvent]] = [
                    *_step_events(status, started, finished),
                    *_text_events(status, shown),
                ]
                for event, data in events:
                    number += 1
                    quiet_since = time.monotonic()
                    yield sse(number, event, data)
            if watch.end is not None:
                yield sse(number + 1, "end", watch.end)
                return
            if watch.failed:
                return


def _step_events(
    status: ExecutionStatus, started: set[str], finished: set[str]
) -> list[tuple[str, StepEvent]]:
    done, total, usage = len(status.steps), status.total_steps, status.usage
    events = []
    for step_id in status.running:
        if step_id not in started and step_id not in finished:
            started.add(step_id)
            data = StepEvent(step=step_id, steps_done=done, total_steps=total, usage=usage)
            events.append(("step_started", data))
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
            steps_done=done,
            total_steps=total,
            usage=usage,
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
    except (WorkflowError, RuntimeError) as exc:  # the status above still says how it ended
        end.error = f"the result could not be read: {exc}"
    else:
        end.outputs, end.usage = result.outputs, result.usage
    return end


class EventStream(StreamingResponse):
    media_type = "text/event-stream"
    release: Callable[[], None] | None = None
    """Gives the stream's slot back however the response ends (done, or the client gone)."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            if self.release is not None:
                self.release()


async def open_stream(client: EngineClient, execution_id: str, request: Request) -> EventStream:
    """The run's event stream for one request, holding a stream slot of its token until it
    ends; 404 before it starts for an unknown run, 429 with Retry-After past the caps."""
    await client.state(execution_id)  # 404 before the stream starts
    slots: StreamSlots = request.app.state.streams
    token = getattr(request.state, "token_name", "-")
    refusal = slots.refusal(token)
    if refusal is not None:
        raise ApiError(
            429, "rate_limited", f"{refusal}: close one or try again in "
            f"{STREAM_RETRY_AFTER_SECONDS} s", **{"retry-after": str(STREAM_RETRY_AFTER_SECONDS)},
        )  # fmt: skip
    stream = EventStream(
        progress(request.app.state.hub, client, execution_id),
        headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
    )
    stream.release = lambda: slots.give_back(token)
    return stream
