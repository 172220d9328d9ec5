"""The composition root: the engine's plugin (engine/plugin.py) on a client, and one worker
for each configured task queue. Settings, the connection and the local dev stack live in
`engine/`.

Run it with ``python worker.py``; it polls TEMPORAL_TASK_QUEUE until SIGINT or SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from datetime import timedelta
from typing import Any

import structlog
from temporalio.worker import Worker

from engine.connection import connect, metrics_runtime, register_search_attributes
from engine.logs import configure_logging
from engine.plugin import EnginePlugin
from engine.settings import Settings
from engine.versioning import deployment_config
from workflows.errors import WorkflowError


async def serve(settings: Settings) -> None:
    log = structlog.get_logger("worker")
    plugin = EnginePlugin(settings)
    runtime = metrics_runtime(settings.metrics_port, settings.metrics_bind)
    client = await connect(settings, runtime, plugins=[plugin])
    if added := await register_search_attributes(client, settings.namespace):
        log.info("registered search attributes", names=added)
    queues = (settings.task_queue, settings.llm_task_queue, settings.action_task_queue)
    options: dict[str, Any] = {  # how this process runs them; what they run is the plugin's
        "graceful_shutdown_timeout": timedelta(seconds=10),
        "max_concurrent_activities": settings.max_concurrent_activities,
        "max_concurrent_workflow_tasks": settings.max_concurrent_workflow_tasks,
        "max_cached_workflows": settings.max_cached_workflows,
        "deployment_config": deployment_config(settings),  # None: not versioned
    }
    workers = [Worker(client, task_queue=q, **options) for q in dict.fromkeys(filter(None, queues))]
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    async with contextlib.AsyncExitStack() as running:
        for each in workers:
            await running.enter_async_context(each)
        log.info(
            "worker started",
            address=settings.address,
            namespace=settings.namespace,
            task_queue=settings.task_queue,
            other_task_queues=[each.task_queue for each in workers[1:]],
            providers=sorted(plugin.wiring.providers),
            actions=sorted(plugin.wiring.actions),
            validators=sorted(plugin.wiring.validators),
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
    except (RuntimeError, WorkflowError) as exc:  # e.g. the server cannot be reached
        structlog.get_logger("worker").error("worker failed", error=str(exc))
        code = 1
    if settings.otlp_endpoint:  # flush the last spans; os._exit skips atexit hooks
        import opentelemetry.trace
        from temporalio.contrib.opentelemetry import ReplaySafeTracerProvider

        provider = opentelemetry.trace.get_tracer_provider()
        if isinstance(provider, ReplaySafeTracerProvider):  # what engine/connection.py set
            provider.shutdown()
    # Skip interpreter teardown, which the client's Rust threads can abort
    # (temporalio/sdk-python#300).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
