"""A span per step when OpenTelemetry is installed and the worker traces (Temporal's plugin
makes the tracer replay-safe inside workflows); otherwise a no-op."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

try:
    from opentelemetry import trace
except ImportError:  # the optional `otel` extra is not installed
    trace = None  # type: ignore[assignment]


@contextlib.contextmanager
def step_span(step_id: str, step_type: str) -> Iterator[None]:
    if trace is None:
        yield
        return
    tracer = trace.get_tracer("llm-workflows")
    with tracer.start_as_current_span(
        f"step {step_id}", attributes={"step_id": step_id, "step_type": step_type}
    ):
        yield
