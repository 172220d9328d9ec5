"""Event streams (engine/rest_events.py) on a live uvicorn against the session's dev server:
many streams on one run cost one status poll, and the caps per token and overall answer 429
with Retry-After."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from engine.client import EngineClient
from engine.rest import create_app
from engine.rest_auth import ApiConfig
from tests.test_rest_api import CI, THREE_STEPS, TOKENS, VIEWER, WAITS, Api, api, factory, live
from workflows.errors import UsageError

__all__ = ["api"]  # the REST test module's live API, shared


class CountingClient(EngineClient):
    """The API's engine, counting the status reads the streams cost."""

    reads = 0

    async def status(self, execution_id: str) -> Any:
        self.reads += 1
        return await super().status(execution_id)


async def watch(http: httpx.AsyncClient, path: str, seen: asyncio.Event, events: list[str]) -> None:
    """Read a stream to its end; `seen` is set at its first event."""
    async with http.stream("GET", path) as stream:
        assert stream.status_code == 200, await stream.aread()
        async for line in stream.aiter_lines():
            if line.startswith("event: "):
                events.append(line.removeprefix("event: "))
                seen.set()


async def test_300_streams_on_a_waiting_run_cost_one_poll_and_a_plain_run_completes(api: Api):
    engine = CountingClient(api.engine.temporal, api.settings, start_worker=False)
    config = ApiConfig(tokens=TOKENS, rate_per_minute=100_000, max_streams_per_token=300)
    app = create_app(api.settings, config, factory(engine))
    waiting = await engine.start(engine.load_yaml(WAITS))
    path = f"/workflows/{waiting.execution_id}/events"
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    async with (
        live(app) as url,
        httpx.AsyncClient(base_url=url, headers=CI, timeout=60, limits=limits) as http,
    ):
        seen = [asyncio.Event() for _ in range(300)]
        events: list[list[str]] = [[] for _ in range(300)]
        streams = [
            asyncio.create_task(watch(http, path, s, e)) for s, e in zip(seen, events, strict=True)
        ]
        await asyncio.wait_for(asyncio.gather(*(s.wait() for s in seen)), 60)
        assert app.state.hub.watches[waiting.execution_id].viewers == 300
        plain = await engine.start(engine.load_yaml(THREE_STEPS))
        result = await asyncio.wait_for(engine.result(plain.execution_id), 60)
        assert result.outputs["y"] == 2
        assert engine.reads < 300  # one poll for all of them, not one per stream
        await engine.signal(waiting.execution_id, "approve", {"answer": "yes"})
        await asyncio.wait_for(asyncio.gather(*streams), 60)
    assert all("step_finished" in e and e[-1] == "end" for e in events)
    assert all(e.count("end") == 1 for e in events)
    assert app.state.hub.watches == {} and app.state.streams.open == {}


@contextlib.asynccontextmanager
async def opened(http: httpx.AsyncClient, path: str) -> AsyncIterator[httpx.Response]:
    async with http.stream("GET", path) as stream:
        if stream.status_code != 200:
            await stream.aread()
        yield stream


async def test_streams_past_the_caps_get_429_with_retry_after(api: Api):
    config = ApiConfig(tokens=TOKENS, max_streams_per_token=2, max_streams=3)
    app = create_app(api.settings, config, factory(api.engine))
    waiting = await api.engine.start(api.engine.load_yaml(WAITS))
    path = f"/workflows/{waiting.execution_id}/events"
    async with (
        live(app) as url,
        httpx.AsyncClient(base_url=url, headers=CI, timeout=30) as ci,
        httpx.AsyncClient(base_url=url, headers=VIEWER, timeout=30) as viewer,
    ):
        async with opened(ci, path) as one, opened(ci, path) as two:
            assert one.status_code == two.status_code == 200
            async with opened(ci, path) as third:
                assert third.status_code == 429
                assert int(third.headers["retry-after"]) >= 1
                body = json.loads(third.content)
                assert body["error"] == "rate_limited"
                assert "API_MAX_STREAMS_PER_TOKEN" in body["message"]
            async with opened(viewer, path) as own:  # another token has its own share
                assert own.status_code == 200
                async with opened(viewer, path) as over:  # but all streams share the total
                    assert over.status_code == 429 and "retry-after" in over.headers
                    assert "API_MAX_STREAMS" in json.loads(over.content)["message"]
        # closed streams give their slots back
        for _ in range(100):
            if not app.state.streams.open:
                break
            await asyncio.sleep(0.1)
        async with opened(ci, path) as again:
            assert again.status_code == 200
    await api.engine.cancel(waiting.execution_id)


def test_stream_caps_come_from_the_environment():
    config = ApiConfig.from_env({"API_MAX_STREAMS_PER_TOKEN": "7", "API_MAX_STREAMS": "70"})
    assert (config.max_streams_per_token, config.max_streams) == (7, 70)
    assert ApiConfig.from_env({}).max_streams_per_token == 100
    with pytest.raises(UsageError, match="API_MAX_STREAMS="):
        ApiConfig.from_env({"API_MAX_STREAMS": "0"})
