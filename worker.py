"""The composition root: the workflow and the activities of activities/catalog.py wired into
workers on the configured queues. Settings, the connection and the local dev stack live in
`engine/`.

Run it with ``python worker.py``; it polls TEMPORAL_TASK_QUEUE until SIGINT or SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import structlog
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker, WorkflowRunner

from activities.catalog import build_actions, extra_queue_workers, main_queue_activities
from activities.mcp_servers import McpServer
from activities.pricing import Price
from activities.providers import Provider
from activities.rate_limits import Pacer
from activities.registry import ActionSpec, ValidatorSpec, load_custom_validators
from engine.connection import connect, metrics_runtime, register_search_attributes
from engine.logs import configure_logging
from engine.settings import Settings
from workflows.errors import WorkflowError
from workflows.interpreter import YamlWorkflow

HEARTBEAT_THROTTLE = timedelta(seconds=0.5)


def workflow_runner() -> WorkflowRunner:
    """How workflow code runs; shared by the worker and the Replayer so replays match runs.

    Without Temporal's sandbox: YamlWorkflow is the only workflow and users never write
    workflow code, while the sandbox re-imported interpreter.py for every run and proxied
    every payload it visited, about a fifth of the worker's CPU per short run
    (bench/RESULTS.md). What it guarded is checked statically instead: everything under
    workflows/ imports only deterministic modules (tests/test_workflow_purity.py) and replay
    tests run every stored history.
    """
    return UnsandboxedWorkflowRunner()


def pacer_for(settings: Settings) -> Pacer:
    """The worker's pacing gates: configured limits, and what earlier replies told of the
    others (remembered in settings.llm_pacing_memory)."""
    from activities.pacing_memory import PacingMemory, endpoint_key

    return Pacer(
        settings.llm_rate_limits,
        enabled=settings.llm_pacing,
        memory=PacingMemory(settings.llm_pacing_memory),
        endpoints={name: endpoint_key(endpoint) for name, endpoint in settings.endpoints.items()},
    )


def build_worker(
    client: Client,
    task_queue: str,
    providers: Mapping[str, Provider],
    definitions_dir: Path,
    actions: Mapping[str, ActionSpec] | None = None,
    secrets: Mapping[str, str] | None = None,
    prices: Mapping[str, Price] | None = None,
    validators: Mapping[str, ValidatorSpec] | None = None,
    pacer: Pacer | None = None,
    mcp_servers: Mapping[str, McpServer] | None = None,
    input_dir: Path = Path("input"),
    **options: Any,
) -> Worker:
    activities = main_queue_activities(
        providers,
        definitions_dir,
        actions or {},
        secrets or {},
        prices,
        validators or {},
        pacer,
        mcp_servers,
        input_dir,
    )
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[YamlWorkflow],
        activities=activities,
        workflow_runner=workflow_runner(),
        # Streamed replies travel in heartbeats (activities/llm.py): send them often.
        max_heartbeat_throttle_interval=HEARTBEAT_THROTTLE,
        default_heartbeat_throttle_interval=HEARTBEAT_THROTTLE,
        # A broken definition fails its run instead of retrying the workflow task forever.
        workflow_failure_exception_types=[WorkflowError],
        **options,
    )


async def serve(settings: Settings) -> None:
    log = structlog.get_logger("worker")
    client = await connect(settings, metrics_runtime(settings.metrics_port, settings.metrics_bind))
    added = await register_search_attributes(client, settings.namespace)
    if added:
        log.info("registered search attributes", names=added)
    from activities.llm import build_providers

    providers = build_providers(settings.endpoints)
    actions = build_actions(settings)
    validators = load_custom_validators(settings.action_modules)
    pacer = pacer_for(settings)
    worker = build_worker(
        client,
        settings.task_queue,
        providers,
        settings.definitions_dir,
        actions,
        settings.secrets,
        settings.prices,
        validators,
        pacer,
        settings.mcp_servers,
        settings.input_dir,
        graceful_shutdown_timeout=timedelta(seconds=10),
        max_concurrent_activities=settings.max_concurrent_activities,
        max_concurrent_workflow_tasks=settings.max_concurrent_workflow_tasks,
        max_cached_workflows=settings.max_cached_workflows,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    workers = [worker, *extra_queue_workers(client, settings, providers, actions, pacer)]
    async with contextlib.AsyncExitStack() as running:
        for each in workers:
            await running.enter_async_context(each)
        log.info(
            "worker started",
            address=settings.address,
            namespace=settings.namespace,
            task_queue=settings.task_queue,
            other_task_queues=[each.task_queue for each in workers[1:]],
            providers=sorted(providers),
            actions=sorted(actions),
            validators=sorted(validators),
            pid=os.getpid(),
        )
        await stop.wait()
        log.info("worker stopping")
    log.info("worker stopped")


def main() -> None:
    configure_logging()
    settings = Settings.from_env(os.environ)
    code = 0
    try:
        asyncio.run(serve(settings))
    except RuntimeError as exc:  # e.g. the server cannot be reached
        structlog.get_logger("worker").error("worker failed", error=str(exc))
        code = 1
    if settings.otlp_endpoint:  # flush the last spans; os._exit skips atexit hooks
        import opentelemetry.trace

        opentelemetry.trace.get_tracer_provider().shutdown()  # type: ignore[attr-defined]
    # Skip interpreter teardown, which the client's Rust threads can abort
    # (temporalio/sdk-python#300).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
