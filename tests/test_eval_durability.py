"""An evaluation survives its worker: killed mid-evaluation (SIGKILL), a new worker
finishes it, and no row whose run had finished is paid for again."""

from __future__ import annotations

import asyncio
import dataclasses
import signal
import time
import uuid

import pytest

from engine.client import EngineClient
from engine.evals.command import EvalRequest, evaluate
from engine.settings import Settings
from tests.fake_llm import FakeLlmServer, Request
from tests.test_durability import spawn_worker, wait_for
from tests.test_evals import HERE, keyword_label

LATENCY = 0.4


def ticket(request: Request) -> str:
    return request.prompt_text.rsplit("(#", 1)[-1]


@pytest.mark.slow  # two worker processes and a sticky-queue timeout: ~30 s
async def test_worker_killed_mid_evaluation_completes_paying_no_finished_row_twice(
    temporal_env,
):
    client = temporal_env.client
    task_queue = f"eval-crash-{uuid.uuid4()}"
    address = client.service_client.config.target_host
    settings = dataclasses.replace(Settings.from_env({}), address=address, task_queue=task_queue)
    engine = EngineClient(client, settings, start_worker=False)
    given = EvalRequest(
        str(HERE / "classify.yaml"),
        str(HERE / "tickets.jsonl"),
        str(HERE / "evaluators.yaml"),
        concurrency=4,
        cache=False,
    )
    with FakeLlmServer(reply=keyword_label, latency=LATENCY) as llm:
        first = spawn_worker(address, task_queue, llm)
        running = asyncio.ensure_future(evaluate(engine, given, note=lambda line: None))
        try:
            await wait_for(lambda: len(llm.requests) >= 12, timeout=60)
            first.send_signal(signal.SIGKILL)
            first.wait()
            killed_at = time.monotonic()
            before = list(llm.requests)
            second = spawn_worker(address, task_queue, llm)
            try:
                report = await asyncio.wait_for(running, 90)
            finally:
                second.terminate()
                second.wait()
        finally:
            running.cancel()
    assert report["metrics"]["accuracy"]["mean"] == 0.75
    assert report["variants"]["base"]["rows_failed"] == 0
    calls = [ticket(r) for r in llm.requests]
    answered = {ticket(r) for r in before if r.received_at < killed_at - 2 * LATENCY}
    assert answered and all(calls.count(row) == 1 for row in answered)
    assert sorted(set(calls)) == sorted({ticket(r) for r in llm.requests})
    assert len(set(calls)) == 20 and len(calls) - 20 <= 4  # only calls in flight, once more
