"""Spans for LLM calls when OpenTelemetry is installed and configured (OTEL_EXPORTER_OTLP_ENDPOINT
on the worker); without it these are no-ops."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

try:
    from opentelemetry import trace
except ImportError:  # the optional `otel` extra is not installed
    trace = None  # type: ignore[assignment]  # None: spans are off


@contextlib.contextmanager
def span(name: str, **attributes: Any) -> Iterator[None]:
    if trace is None:
        yield
        return
    with trace.get_tracer("llm-workflows").start_as_current_span(name, attributes=attributes):
        yield
