"""The connection to Temporal: client, tracing plugin, metrics runtime, search attributes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client, Plugin
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from engine.settings import Settings
from workflows import search_attributes
from workflows.errors import UsageError


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


async def connect(
    settings: Settings, runtime: Runtime | None = None, plugins: Sequence[Plugin] = ()
) -> Client:
    """The one way every front door connects: address, namespace, TLS and API key as
    Temporal's environment configuration gave them (`Settings.from_env`). The worker adds
    the engine's plugin (engine/plugin.py), which every worker built from the client takes."""
    try:
        options = settings.connect_config()  # reads the TLS certificate and key files
    except OSError as exc:
        raise UsageError(f"TLS for Temporal at {settings.address}: {exc}") from None
    return await Client.connect(
        **options,
        data_converter=settings.data_converter,
        runtime=runtime,
        plugins=[*tracing_plugins(settings.otlp_endpoint), *plugins],
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
