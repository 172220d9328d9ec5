"""A span per step when OpenTelemetry is installed and the worker traces (Temporal's plugin
makes the tracer replay-safe inside workflows); otherwise a no-op."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

try:
    from opentelemetry import context, trace
except ImportError:  # the optional `otel` extra is not installed
    trace = None  # type: ignore[assignment]  # None: spans are off


@contextlib.contextmanager
def step_span(step_id: str, step_type: str) -> Iterator[None]:
    """The step's span, current while the step runs (so its activities' spans are its
    children). A run evicted from the worker's cache closes its steps from another context:
    then the span ends without detaching, which would only log a traceback."""
    if trace is None:
        yield
        return
    tracer = trace.get_tracer("llm-workflows")
    span = tracer.start_span(
        f"step {step_id}", attributes={"step_id": step_id, "step_type": step_type}
    )
    token = context.attach(trace.set_span_in_context(span))
    evicted = False
    try:
        yield
    except GeneratorExit:
        evicted = True
        raise
    except BaseException as exc:
        span.record_exception(exc)
        span.set_status(trace.Status(trace.StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
        raise
    finally:
        if not evicted:
            context.detach(token)
        span.end()
