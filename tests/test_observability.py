"""What an operator sees: log lines that carry the run's ids, and Prometheus metrics with
the project's LLM counters, from a real worker process."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

from tests.conftest import ROOT, definition, free_port, worker_env
from tests.fake_llm import FakeLlmServer
from workflows.contracts import RunInput, RunResult
from workflows.interpreter import YamlWorkflow

HELLO = (ROOT / "definitions" / "hello_world.yaml").read_text()


async def test_a_runs_logs_carry_its_ids_and_metrics_count_its_calls(temporal_env):
    client = temporal_env.client
    task_queue = f"observe-{uuid.uuid4()}"
    port = free_port()
    with FakeLlmServer() as llm:
        address = client.service_client.config.target_host
        env = worker_env(address, task_queue, llm, METRICS_PORT=str(port))
        worker = await asyncio.create_subprocess_exec(
            sys.executable, "worker.py", cwd=ROOT, env=env, stderr=asyncio.subprocess.PIPE
        )
        try:
            run_id = f"observe-{uuid.uuid4()}"
            result: RunResult = await client.execute_workflow(
                YamlWorkflow.run,
                RunInput(definition=definition(HELLO), variables={"user_name": "Al"}),
                id=run_id,
                task_queue=task_queue,
            )
            metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        finally:
            worker.send_signal(signal.SIGTERM)
            _, stderr = await asyncio.wait_for(worker.communicate(), 30)
    lines = [json.loads(line) for line in stderr.decode().splitlines() if line.startswith("{")]
    [call] = [line for line in lines if line["event"] == "llm call"]
    assert call["workflow_id"] == run_id and call["step_id"] == "greet"
    assert (call["attempt"], call["provider"], call["model"]) == (1, "openai", "gpt-4")
    assert call["cost_usd"] == result.usage.cost_usd > 0
    [step] = [line for line in lines if line["event"].startswith("step finished")]
    assert step["step_id"] == "greet" and step["temporal_workflow"]["workflow_id"] == run_id

    ok_calls = [
        m for m in metrics.splitlines()
        if m.startswith("llm_calls") and 'outcome="ok"' in m and 'provider="openai"' in m
    ]  # fmt: skip
    assert ok_calls and ok_calls[0].endswith(" 1")
    assert f" {result.usage.input_tokens}" in next(
        m for m in metrics.splitlines() if m.startswith("llm_input_tokens")
    )
    assert "temporal_" in metrics  # the SDK's own worker metrics are there too


async def test_traces_reach_an_otlp_collector(temporal_env):
    """A real OTLP/HTTP receiver on loopback collects the worker's spans."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    spans: list[tuple[str, dict]] = []
    ids: dict[str, bytes] = {}
    parents: dict[bytes, bytes] = {}

    class Collector(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            request = ExportTraceServiceRequest.FromString(
                self.rfile.read(int(self.headers["content-length"]))
            )
            for resource in request.resource_spans:
                for scope in resource.scope_spans:
                    for span in scope.spans:
                        attributes = {a.key: a.value for a in span.attributes}
                        spans.append((span.name, attributes))
                        ids[span.name] = span.span_id
                        parents[span.span_id] = span.parent_span_id
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    collector = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=collector.serve_forever, daemon=True).start()
    client = temporal_env.client
    task_queue = f"traces-{uuid.uuid4()}"
    try:
        env = worker_env(
            client.service_client.config.target_host,
            task_queue,
            OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{collector.server_address[1]}",
        )
        worker = await asyncio.create_subprocess_exec(
            sys.executable, "worker.py", cwd=ROOT, env=env, stderr=asyncio.subprocess.DEVNULL
        )
        try:
            await client.execute_workflow(
                YamlWorkflow.run,
                RunInput(definition=definition(HELLO), mock_providers=["openai"]),
                id=f"traces-{uuid.uuid4()}",
                task_queue=task_queue,
            )
        finally:
            worker.send_signal(signal.SIGTERM)
            await asyncio.wait_for(worker.wait(), 30)
    finally:
        collector.shutdown()
        collector.server_close()
    names = {name for name, _ in spans}
    assert "RunWorkflow:YamlWorkflow" in names and "RunActivity:llm_call" in names
    [step] = [attributes for name, attributes in spans if name == "step greet"]
    assert step["step_type"].string_value == "llm_call"
    [llm] = [attributes for name, attributes in spans if name == "llm mock/gpt-4"]
    assert llm["step_id"].string_value == "greet"
    ancestors, at = [], ids["RunActivity:llm_call"]
    while at in parents:
        at = parents[at]
        ancestors.append(at)
    assert ids["step greet"] in ancestors  # the step's span is current while it runs


def test_log_lines_of_the_rest_server_are_json_without_colour_codes():
    """Uvicorn hands a coloured copy of its messages along; a JSON log line keeps none."""
    script = (
        "import logging\n"
        "from engine.logs import configure_logging\n"
        "configure_logging()\n"
        "logging.getLogger('uvicorn.error').info('Uvicorn running on %s', 'http://x',"
        " extra={'color_message': '\\x1b[1mUvicorn\\x1b[0m running on %s'})\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    [line] = done.stderr.strip().splitlines()
    assert "\x1b" not in line and "\\u001b" not in line
    assert json.loads(line)["event"] == "Uvicorn running on http://x"
