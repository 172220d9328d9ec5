"""The composition root: activities and workflow wired into workers on the configured
queues. Settings, the connection and the local dev stack live in `engine/`.

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

# Provider SDKs, httpx and SQLAlchemy are imported where a worker is built, not here, so the
# starter starts quickly.
from activities.load_definition import DefinitionActivities
from activities.pacing import pace
from activities.pricing import DEFAULT_PRICES, Price
from activities.providers import Provider
from activities.registry import (
    ActionSpec,
    ValidatorSpec,
    load_custom_actions,
    load_custom_validators,
    params_models,
)
from engine.connection import connect, metrics_runtime, register_search_attributes
from engine.logs import configure_logging
from engine.settings import Settings
from workflows.errors import WorkflowError
from workflows.interpreter import YamlWorkflow


def build_actions(settings: Settings) -> dict[str, ActionSpec]:
    """Built-in actions wired to their clients, plus the custom ones of ACTION_MODULES."""
    import httpx

    from activities.actions import builtin_actions
    from activities.database import DatabaseActions
    from activities.email import EmailActions
    from activities.files import FileActions
    from activities.http import AddressGuard, HttpActions

    http = HttpActions(
        httpx.AsyncClient(),
        AddressGuard.from_list(settings.http_allowlist),
        settings.http_max_body_bytes,
    )
    builtins = builtin_actions(
        http,
        FileActions(settings.output_dir),
        EmailActions(settings.smtp),
        DatabaseActions(settings.databases),
    )
    return {**builtins, **load_custom_actions(settings.action_modules)}


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


def build_worker(
    client: Client,
    task_queue: str,
    providers: Mapping[str, Provider],
    definitions_dir: Path,
    actions: Mapping[str, ActionSpec] | None = None,
    secrets: Mapping[str, str] | None = None,
    prices: Mapping[str, Price] | None = None,
    validators: Mapping[str, ValidatorSpec] | None = None,
    **options: Any,
) -> Worker:
    from activities.actions import action_activity, unknown_action
    from activities.llm import LlmActivities
    from activities.validators import validator_activity

    actions = actions or {}
    validators = validators or {}
    llm = LlmActivities(providers, prices=DEFAULT_PRICES if prices is None else prices)
    definitions = DefinitionActivities(definitions_dir, params_models(actions), set(validators))
    action_activities = [action_activity(spec, secrets or {}) for spec in actions.values()]
    checks = [validator_activity(name, spec.run) for name, spec in validators.items()]
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[YamlWorkflow],
        activities=[
            llm.llm_call,
            definitions.load_definition,
            pace,
            *action_activities,
            *checks,
            unknown_action,
        ],
        workflow_runner=workflow_runner(),
        # A broken definition fails its run instead of retrying the workflow task forever.
        workflow_failure_exception_types=[WorkflowError],
        **options,
    )


def extra_queue_workers(
    client: Client,
    settings: Settings,
    providers: Mapping[str, Provider],
    actions: Mapping[str, ActionSpec],
) -> list[Worker]:
    """Workers for the separate LLM and action task queues, when they are configured."""
    from activities.actions import action_activity, unknown_action
    from activities.llm import LlmActivities

    workers = []
    if settings.llm_task_queue:
        llm = LlmActivities(providers, prices=settings.prices)
        workers.append(
            Worker(
                client,
                task_queue=settings.llm_task_queue,
                activities=[llm.llm_call],
                max_task_queue_activities_per_second=settings.llm_rate_per_second,
                max_concurrent_activities=settings.max_concurrent_activities,
            )
        )
    if settings.action_task_queue:
        workers.append(
            Worker(
                client,
                task_queue=settings.action_task_queue,
                activities=[
                    *(action_activity(spec, settings.secrets) for spec in actions.values()),
                    unknown_action,
                ],
                max_concurrent_activities=settings.max_concurrent_activities,
            )
        )
    return workers


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
    worker = build_worker(
        client,
        settings.task_queue,
        providers,
        settings.definitions_dir,
        actions,
        settings.secrets,
        settings.prices,
        validators,
        graceful_shutdown_timeout=timedelta(seconds=10),
        max_concurrent_activities=settings.max_concurrent_activities,
        max_concurrent_workflow_tasks=settings.max_concurrent_workflow_tasks,
        max_cached_workflows=settings.max_cached_workflows,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    workers = [worker, *extra_queue_workers(client, settings, providers, actions)]
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
