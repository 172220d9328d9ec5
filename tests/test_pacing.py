"""A fan-out against a rate-limited provider runs at the provider's rate instead of into it:
the worker paces calls from the provider's own headers, shows the wait, and a 429 slows
every call to that model, not only the one retried."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid

import pytest

from activities.pacing_memory import PacingMemory, endpoint_key
from activities.rate_limit_settings import Limit as Configured
from activities.rate_limits import PROBE_CALLS, Pacer
from engine.client import EngineClient
from engine.settings import Settings
from tests.conftest import definition, new_worker, start
from tests.fake_limits import Limit
from workflows.contracts import RunInput

FAN_OUT = """
workflow:
  name: paced
  steps:
    - id: label
      type: llm_call
      model: {model}
      max_tokens: 10
      for_each: "{{{{ range(40) | list }}}}"
      concurrency: 20
      prompt: "Label item {{{{ item }}}} in one word"
      outputs: [label]
      retry: {{max_attempts: 10, initial_interval: 1s}}
"""


async def fan_out(
    client, endpoints, pacer: Pacer, model: str = "openai/gpt-4o-mini"
) -> tuple[list[str], float]:
    """Run the fan-out; the waits `status` showed meanwhile, and the seconds it took."""
    async with new_worker(client, endpoints, pacer=pacer) as worker:
        settings = dataclasses.replace(
            Settings.from_env({}),
            address=client.service_client.config.target_host,
            task_queue=worker.task_queue,
        )
        engine = EngineClient(client, settings, start_worker=False)
        loop = asyncio.get_running_loop()
        started_at = loop.time()
        started = await engine.start(
            engine.load_yaml(FAN_OUT.format(model=model)), execution_id=f"p-{uuid.uuid4()}"
        )
        result = asyncio.ensure_future(engine.result(started.execution_id))
        seen: list[str] = []
        while not result.done():
            seen += (await engine.status(started.execution_id)).waiting_for
            await asyncio.wait({result}, timeout=0.2)
        done = result.result()
    assert len(done.steps["label"].outputs["label"]) == 40
    return seen, loop.time() - started_at


@pytest.mark.parametrize("model", ["openai/gpt-4o-mini", "anthropic/claude-haiku-4-5"])
async def test_paced_calls_learn_the_limit_from_the_headers_and_are_not_refused(
    client, endpoints, fake_llm, model
):
    name = model.split("/")[1]
    fake_llm.limits = {name: Limit(requests_per_minute=600)}  # 10 a second
    seen, took = await fan_out(client, endpoints, Pacer(), model)
    assert fake_llm.served[name] == 40
    assert fake_llm.refused[name] <= 1  # the first burst teaches the rate
    assert f"waiting for {model} capacity" in seen
    assert took >= 3.0  # 40 calls at 10 a second, after a burst of 10


async def test_a_configured_limit_paces_from_the_first_call(client, endpoints, fake_llm):
    fake_llm.limits = {"gpt-4o-mini": Limit(requests_per_minute=600)}
    limits = {"openai/gpt-4o-mini": Configured(requests_per_minute=600)}
    await fan_out(client, endpoints, Pacer(limits))
    assert fake_llm.refused["gpt-4o-mini"] == 0


async def test_without_pacing_the_same_fan_out_runs_into_the_limit(client, endpoints, fake_llm):
    fake_llm.limits = {"gpt-4o-mini": Limit(requests_per_minute=600)}
    await fan_out(client, endpoints, Pacer(enabled=False))
    assert fake_llm.refused["gpt-4o-mini"] >= 10  # today's behaviour: retried one by one


WIDE = """
workflow:
  name: wide
  steps:
    - id: each
      type: llm_call
      model: openai/gpt-4o-mini
      for_each: "{{ range(100) | list }}"
      concurrency: 100
      prompt: "item {{ item }}"
      outputs: [label]
"""


async def wide_fan_out(client, endpoints, pacer: Pacer) -> None:
    async with new_worker(client, endpoints, pacer=pacer) as worker:
        handle = await start(client, worker, RunInput(definition=definition(WIDE)))
        result = await handle.result()
    assert len(result.steps["each"].outputs["label"]) == 100


def out_before_the_first_reply(fake_llm) -> int:
    """Requests the fake had received while its first was still being answered."""
    first = min(request.received_at for request in fake_llm.requests)
    return sum(request.received_at < first + fake_llm.latency for request in fake_llm.requests)


def remembering(path, endpoints) -> Pacer:
    """A worker's pacer as `python worker.py` builds it: a memory file, the endpoints' keys."""
    keys = {name: endpoint_key(endpoint) for name, endpoint in endpoints.items()}
    return Pacer(memory=PacingMemory(path), endpoints=keys)


async def test_a_restarted_worker_remembers_no_limit_and_lets_a_whole_fan_out_out_at_once(
    client, endpoints, fake_llm, tmp_path
):
    """Pacing costs nothing where no limit binds: the first worker ever probes with a few
    calls (the server sends no limit headers) and remembers it; the next one, just started,
    lets all 100 calls of a fan-out out at once."""
    fake_llm.latency = 2.5  # a margin: all 100 are dispatched well within one call
    memory = tmp_path / "pacing.json"
    await wide_fan_out(client, endpoints, remembering(memory, endpoints))
    assert out_before_the_first_reply(fake_llm) == PROBE_CALLS  # knew nothing: probed
    fake_llm.requests.clear()
    await wide_fan_out(client, endpoints, remembering(memory, endpoints))
    assert out_before_the_first_reply(fake_llm) == 100


async def test_a_restarted_worker_paces_a_remembered_limit_from_the_first_call(
    client, endpoints, fake_llm, tmp_path
):
    """Knowing nothing, a worker still probes and is not refused; what the replies said of
    the limit is remembered, and the next worker paces at it from its first call."""
    fake_llm.limits = {"gpt-4o-mini": Limit(requests_per_minute=600)}
    memory = tmp_path / "pacing.json"
    await fan_out(client, endpoints, remembering(memory, endpoints))
    assert fake_llm.refused["gpt-4o-mini"] <= 1
    key = f"openai/gpt-4o-mini@{endpoint_key(endpoints['openai'])}"
    assert PacingMemory(memory).recall(key) == Configured(requests_per_minute=600)
    fake_llm.refused.clear()
    pacer = remembering(memory, endpoints)
    assert pacer.gate("openai", "gpt-4o-mini").rates()[0] == 10  # known before any call
    await fan_out(client, endpoints, pacer)
    assert fake_llm.refused["gpt-4o-mini"] == 0
