"""The workbench (engine/web.py) on a live uvicorn against the session's dev server, with a
writing token and a read-only one, and a definition that waits for an approval: shared by
tests/test_workbench.py (HTTP) and tests/test_workbench_browser.py (Chromium)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from activities.endpoints import Endpoint
from engine.client import EngineClient
from engine.evals.command import EvalRequest, prepare, start_prepared
from engine.rest import create_app
from engine.rest_auth import ApiConfig, ApiToken
from engine.web_security import COOKIE
from tests.conftest import ROOT, new_worker
from tests.fake_llm import FakeLlmServer
from tests.test_rest_api import factory, live, settings_for

WRITER = "writer-0123456789abcdef"
READER = "reader-0123456789abcdef"
CONFIG = ApiConfig(
    tokens=(ApiToken("writer", WRITER), ApiToken("reader", READER, read_only=True)),
    rate_per_minute=100_000,
)
HOSTILE = '<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2">'
APPROVAL = """
workflow:
  name: wb-approval
  variables:
    topic: {type: string, default: tea}
  steps:
    - id: draft
      type: llm_call
      model: gpt-4o-mini
      prompt: "Write about {{ topic }}"
      outputs: [post]
    - id: review
      name: Editor's approval
      type: wait_for_signal
      signal: approve
      outputs:
        - {name: approved, type: boolean, description: Ship the post?}
        - {name: level, type: string, enum: [low, high]}
        - comment
    - id: publish
      type: set
      values: {shipped: "{{ approved }}"}
  outputs:
    shipped: "{{ shipped }}"
  budget: {max_tokens: 100000}
"""


@dataclasses.dataclass
class Bench:
    url: str
    engine: EngineClient
    llm: FakeLlmServer

    def http(self, token: str | None = WRITER, **options: Any) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=30, **options)

    def session(self, token: str = WRITER) -> httpx.AsyncClient:
        """As a browser signed in: the session cookie, no Authorization header."""
        return httpx.AsyncClient(base_url=self.url, cookies={COOKIE: token}, timeout=30)

    async def waiting_run(self, topic: str = "tea") -> str:
        """A run of APPROVAL that waits at `review`."""
        loaded = self.engine.load_yaml(APPROVAL)
        run_id = f"wb-{uuid.uuid4().hex[:10]}"
        await self.engine.start(loaded, {"topic": topic}, execution_id=run_id)
        for _ in range(200):
            status = await self.engine.status(run_id)
            if "review" in status.waiting_signals:
                return run_id
            await asyncio.sleep(0.05)
        raise AssertionError(f"{run_id} never waited at review: {status}")


@pytest_asyncio.fixture(name="bench", scope="module", loop_scope="session")
async def bench_server(
    temporal_env: WorkflowEnvironment, llm_server: FakeLlmServer
) -> AsyncIterator[Bench]:
    client = temporal_env.client
    endpoints = {"openai": Endpoint(api_key="test-key", base_url=llm_server.openai_url)}
    async with new_worker(client, endpoints) as worker:
        settings = settings_for(client.service_client.config.target_host, worker.task_queue)
        engine = EngineClient(client, settings, start_worker=False)
        async with live(create_app(settings, CONFIG, factory(engine))) as url:
            yield Bench(url, engine, llm_server)


def model_label(request: Any) -> str:
    """A classifier for the evaluation below: gpt-4o-mini is right on every row, gpt-4o
    answers `other` (with a script in it) to every refund."""
    text = request.prompt_text.split(":", 1)[-1]
    if "refund" in text:
        return "billing" if request.body.get("model") != "gpt-4o" else f"other {HOSTILE}"
    return "other"


async def evaluation(bench: Bench, folder: Path, wait: bool = True) -> str:
    """An evaluation of tests/evals/classify.yaml on three rows (one holding a script),
    variants `base` and `big` (gpt-4o), which disagree on rows 1 and 2; ended, if `wait`."""
    rows = [
        {"ticket": "I want a refund", "label": "billing"},
        {"ticket": f"refund {HOSTILE}", "label": "billing"},
        {"ticket": "hello", "label": "other"},
    ]
    data = folder / "rows.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    evals = ROOT / "tests" / "evals"
    request = EvalRequest(
        str(evals / "classify.yaml"), str(data), str(evals / "evaluators.yaml"),
        variants=["big:model=gpt-4o"], cache=False,
    )  # fmt: skip
    prepared = prepare(request, bench.engine.settings)
    if not wait:
        return await start_prepared(bench.engine, prepared)
    bench.llm.reply = model_label
    try:
        execution_id = await start_prepared(bench.engine, prepared)
        await bench.engine.result(execution_id)
    finally:
        bench.llm.reply = lambda request: f"Hello from {request.body.get('model')}"
    return execution_id
