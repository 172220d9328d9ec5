"""Settings from the environment, read once by the worker, the starter and the client API.

Nothing reads the environment at import time; `Settings.from_env()` is the one place.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from activities.endpoints import DEFAULT_THRESHOLD, Endpoint, PayloadStorage, SmtpSettings
from activities.mcp_servers import McpServer, read_servers
from activities.pricing import DEFAULT_PRICES, Price, read_prices
from activities.rate_limit_settings import Limit, read_limits
from activities.secrets import declared_secrets
from workflows.errors import UsageError
from workflows.providers import PROVIDERS, provider_spec

if TYPE_CHECKING:  # Temporal loads only when a command connects: `validate` stays quick
    from temporalio.converter import DataConverter
    from temporalio.envconfig import ClientConfigProfile, ClientConfigTLS, ClientConnectConfig

ROOT = Path(__file__).resolve().parent.parent

CLOUD_UI_URL = "https://cloud.temporal.io"


@dataclass(frozen=True)
class Settings:
    address: str = "localhost:7233"
    namespace: str = "default"
    temporal_api_key: str | None = None
    """Temporal Cloud's (or any server's) API key, sent as a bearer token over TLS."""
    temporal_tls: ClientConfigTLS | None = None
    """TLS as Temporal's environment configuration has it: server CA, client cert and key
    (mTLS), server name; None leaves it to the API key (TLS with the system's roots)."""
    temporal_grpc_meta: Mapping[str, str] = field(default_factory=dict)
    task_queue: str = "llm-workflows"
    ui_url: str = "http://localhost:8233"
    definitions_dir: Path = Path(".")
    dev_dir: Path = ROOT / ".temporal-dev"
    """Where a dev server started by the starter keeps its SQLite file, logs and pid files."""
    endpoints: Mapping[str, Endpoint] = field(default_factory=dict)
    output_dir: Path = Path("output")
    """save_to_file writes only under this folder."""
    input_dir: Path = Path("input")
    """Image files an llm_call names are read from this folder only (INPUT_DIR)."""
    http_allowlist: tuple[str, ...] = ()
    """Hosts or networks (CIDR) that http actions may reach although they are not public."""
    http_max_body_bytes: int = 1_000_000
    smtp: SmtpSettings = SmtpSettings()
    databases: Mapping[str, str] = field(default_factory=dict)
    secrets: Mapping[str, str] = field(default_factory=dict)
    action_modules: tuple[str, ...] = ()
    """Modules with custom actions (functions marked with @action)."""
    mcp_servers: Mapping[str, McpServer] = field(default_factory=dict)
    """MCP servers whose tools an llm_call may offer (`tools: [{mcp: NAME}]`), by name
    (MCP_SERVERS, JSON)."""
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
    llm_rate_limits: Mapping[str, Limit] = field(default_factory=dict)
    """Requests and tokens per minute by provider or provider/model (LLM_RATE_LIMITS)."""
    llm_pacing: bool = True
    """Pace model calls at the provider's rate limits (LLM_PACING=off: call at once)."""
    llm_pacing_memory: Path | None = None
    """Where a worker keeps what replies told of each model's limit, to pace from it when it
    restarts (LLM_PACING_MEMORY; `pacing.json` in the dev dir by default, off: nowhere)."""
    action_task_queue: str | None = None
    worker_deployment: str | None = None
    worker_build_id: str | None = None
    """The worker's Worker Deployment and build (engine/versioning.py): runs stay pinned to
    the build they started on (WORKER_DEPLOYMENT_NAME, WORKER_BUILD_ID)."""
    triggers_file: Path | None = None
    """Webhooks the REST API serves at /triggers/NAME (TRIGGERS_FILE, engine/triggers.py)."""
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
        from activities.codec import codec_from_key, data_converter
        from activities.payload_store import external_storage

        return data_converter(
            codec_from_key(self.payload_key, self.payload_key_id),
            external_storage(self.payload_storage, default_directory=self.dev_dir / "payloads"),
        )

    def connect_config(self) -> ClientConnectConfig:
        """`Client.connect` keyword arguments: address, namespace, API key, TLS, gRPC
        metadata, translated by the SDK's own rules (an API key alone turns TLS on)."""
        from temporalio.envconfig import ClientConfigProfile

        profile = ClientConfigProfile(
            address=self.address,
            namespace=self.namespace,
            api_key=self.temporal_api_key,
            tls=self.temporal_tls,
            grpc_meta=self.temporal_grpc_meta,
        )
        return profile.to_client_connect_config()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, connection: bool = True) -> Settings:
        """From `env` (the process's environment by default). The connection comes from
        Temporal's environment configuration: the TEMPORAL_PROFILE profile of the config file
        (TEMPORAL_CONFIG_FILE, else temporal.toml in the user's config directory) overridden
        by TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY and TEMPORAL_TLS*. Provider
        endpoints: OPENAI_*, ANTHROPIC_*, and <NAME>_BASE_URL for any OpenAI-compatible
        server (OLLAMA_BASE_URL defaults to a local Ollama). `connection=False` leaves the
        connection at its defaults without loading Temporal, for commands that never connect."""
        env = os.environ if env is None else env
        temporal = _temporal_profile(env) if connection else _Connection()
        endpoints = _endpoints(env)
        address = temporal.address or cls.address
        host, _, port = address.rpartition(":")
        ui_url = f"http://localhost:{int(port) + 1000}" if port.isdigit() else cls.ui_url
        if host.endswith((".tmprl.cloud", ".api.temporal.io")):
            ui_url = CLOUD_UI_URL
        output_dir = Path(env.get("OUTPUT_DIR", cls.output_dir))
        dev_dir = Path(env.get("TEMPORAL_DEV_DIR", cls.dev_dir))
        memory = env.get("LLM_PACING_MEMORY", "").strip()
        pacing_memory = None if memory.lower() in _OFF else Path(memory or dev_dir / "pacing.json")
        databases = {
            key.removeprefix("DATABASE_URL_").lower(): value
            for key, value in env.items()
            if key.startswith("DATABASE_URL_") and value
        }
        databases["default"] = env.get("DATABASE_URL") or f"sqlite:///{output_dir}/workflows.db"
        return cls(
            address=address,
            namespace=temporal.namespace or cls.namespace,
            temporal_api_key=temporal.api_key or None,
            temporal_tls=temporal.tls,
            temporal_grpc_meta=dict(temporal.grpc_meta),
            task_queue=env.get("TEMPORAL_TASK_QUEUE", cls.task_queue),
            ui_url=env.get("TEMPORAL_UI_URL", ui_url).rstrip("/"),
            definitions_dir=Path(env.get("DEFINITIONS_DIR", ".")),
            dev_dir=dev_dir,
            endpoints=endpoints,
            output_dir=output_dir,
            input_dir=Path(env.get("INPUT_DIR", cls.input_dir)),
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
            mcp_servers=_mcp_servers(env.get("MCP_SERVERS", "")),
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
            llm_rate_limits=_rate_limits(env.get("LLM_RATE_LIMITS", "")),
            llm_pacing=env.get("LLM_PACING", "on").lower() not in _OFF,
            llm_pacing_memory=pacing_memory,
            action_task_queue=env.get("TEMPORAL_ACTION_TASK_QUEUE") or None,
            worker_deployment=env.get("WORKER_DEPLOYMENT_NAME") or None,
            worker_build_id=env.get("WORKER_BUILD_ID") or None,
            triggers_file=Path(env["TRIGGERS_FILE"]) if env.get("TRIGGERS_FILE") else None,
            otlp_endpoint=env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or None,
            metrics_port=int(env["METRICS_PORT"]) if env.get("METRICS_PORT") else None,
            metrics_bind=env.get("METRICS_BIND") or cls.metrics_bind,
            payload_key=env.get("PAYLOAD_KEY") or None,
            payload_key_id=env.get("PAYLOAD_KEY_ID", cls.payload_key_id),
            codec_server_token=env.get("CODEC_SERVER_TOKEN") or None,
            payload_storage=PayloadStorage(
                # any text: PayloadStorage refuses an unknown kind, naming the ones to write
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


def _endpoints(env: Mapping[str, str]) -> dict[str, Endpoint]:
    """Each provider of the table that the environment can point at, and each
    OpenAI-compatible server named by a `<NAME>_BASE_URL`, with its key and base URL."""
    names = {key.removesuffix("_BASE_URL").lower() for key in env if key.endswith("_BASE_URL")}
    names |= {spec.name for spec in PROVIDERS if spec.needs != "nothing"}
    endpoints = {}
    for name in sorted(names):
        spec = provider_spec(name)
        endpoints[name] = Endpoint(
            api_key=(env.get(spec.key_env) if spec.key_env else None) or None,
            base_url=(env.get(spec.base_url_env) if spec.base_url_env else None)
            or spec.default_base_url,
        )
    return endpoints


def _temporal_profile(env: Mapping[str, str]) -> ClientConfigProfile | _Connection:
    """The connection profile from Temporal's own environment configuration (the same
    variables and temporal.toml the Temporal CLI reads)."""
    from temporalio.envconfig import ClientConfigProfile

    try:
        return ClientConfigProfile.load(override_env_vars=dict(env))
    except RuntimeError as exc:  # the bridge's ConfigError: a missing profile, bad TOML
        raise UsageError(f"Temporal client configuration: {exc}") from None


@dataclass(frozen=True)
class _Connection:
    """What from_env reads of a Temporal profile, all unset: for commands that never connect."""

    address: str | None = None
    namespace: str | None = None
    api_key: str | None = None
    tls: ClientConfigTLS | None = None
    grpc_meta: Mapping[str, str] = field(default_factory=dict)


_OFF = ("off", "0", "false", "no")


def _rate_limits(text: str) -> dict[str, Limit]:
    try:
        return read_limits(text)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _mcp_servers(text: str) -> dict[str, McpServer]:
    try:
        return read_servers(text)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _split(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())
