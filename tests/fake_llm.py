"""A local HTTP server that speaks the OpenAI and Anthropic wire formats.

The real SDKs talk to it over loopback. Tests script its answers (faults first, then replies),
and assert on its request log.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Fault:
    """One scripted bad answer: an HTTP error status, or a `kind` of broken 200 reply."""

    status: int = 200
    message: str = "scripted fault"
    headers: dict[str, str] = field(default_factory=dict)
    kind: str = "status"
    """status | reset (connection closed, no reply) | malformed (invalid JSON) | empty (no
    text) | refusal (the model declines) | length (cut off at max_tokens)"""


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    received_at: float = field(default_factory=time.monotonic)

    @property
    def prompt_text(self) -> str:
        """Every message's text, system included, joined: what the model was sent."""
        parts = [self.body.get("system") or ""]
        for message in self.body.get("messages", []):
            content = message.get("content")
            parts.append(content if isinstance(content, str) else json.dumps(content))
        return "\n".join(parts)


CONTROL_PATH = "/_control"


def default_reply(request: Request) -> str:
    return f"Hello from {request.body.get('model')}"


class FakeLlmServer:
    """Start with ``with FakeLlmServer() as server:``; ``openai_url``/``anthropic_url`` to use."""

    def __init__(self, reply: Callable[[Request], str] = default_reply, latency: float = 0.0):
        self.reply = reply
        self.latency = latency
        self.requests: list[Request] = []
        self.fault_for: Callable[[Request], Fault | None] = lambda request: None
        """A fault chosen by the request itself, for tests where calls race."""
        self.in_flight = 0
        self.max_in_flight = 0
        self._faults: deque[Fault] = deque()
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def openai_url(self) -> str:
        return f"{self.url}/v1"

    @property
    def anthropic_url(self) -> str:
        return self.url

    def fail_next(self, *faults: Fault) -> None:
        with self._lock:
            self._faults.extend(faults)

    def __enter__(self) -> FakeLlmServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _answer(self, request: Request) -> tuple[int, dict[str, str], bytes | None]:
        with self._lock:
            self.requests.append(request)
            fault = self.fault_for(request) or (self._faults.popleft() if self._faults else None)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.latency:
                time.sleep(self.latency)
        finally:
            with self._lock:
                self.in_flight -= 1
        anthropic = request.path.endswith("/messages")
        kind = fault.kind if fault else "ok"
        if kind == "reset":
            return 0, {}, None
        if kind == "malformed":
            return 200, {}, b'{"id": "broken", "choices": ['
        if fault is not None and kind == "status":
            return fault.status, fault.headers, json.dumps(_error_body(fault, anthropic)).encode()
        text = {"empty": "", "refusal": ""}.get(kind, self.reply(request))
        if kind == "length":
            text = text[: max(len(text) // 2, 1)]
        usage_in, usage_out = len(request.prompt_text.split()), len(text.split())
        if anthropic:
            body = _anthropic_message(request, text, usage_in, usage_out)
            if kind in ("refusal", "length"):
                body["stop_reason"] = "refusal" if kind == "refusal" else "max_tokens"
                body["content"] = [] if kind == "refusal" else body["content"]
        else:
            body = _openai_completion(request, text, usage_in, usage_out)
            choice = body["choices"][0]
            if kind == "refusal":
                choice["message"] |= {"content": None, "refusal": "I can't help with that."}
            if kind == "length":
                choice["finish_reason"] = "length"
        return 200, {}, json.dumps(body).encode()

    def _control(self, command: dict[str, Any]) -> dict[str, Any]:
        """For a server in another process (the benchmark's): set the latency, and read or
        clear the request log (arrival times and prompts)."""
        with self._lock:
            if "latency" in command:
                self.latency = float(command["latency"])
            log = [
                {"received_at": r.received_at, "prompt": r.body["messages"][-1]["content"]}
                for r in self.requests
            ]
            if command.get("clear"):
                self.requests.clear()
        return {"latency": self.latency, "requests": log}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("content-length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                if self.path == CONTROL_PATH:
                    self._reply(200, {}, json.dumps(server._control(body)).encode())
                    return
                headers = {k.lower(): v for k, v in self.headers.items()}
                request = Request(self.path, headers, body)
                status, headers, data = server._answer(request)
                if data is None:  # a connection reset: no reply at all
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self._reply(status, headers, data)

            def _reply(self, status: int, headers: dict[str, str], data: bytes) -> None:
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # the default backlog of 5 refuses bursts of connections

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away (a killed worker, a timed-out call) is not news."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def _openai_completion(request: Request, text: str, usage_in: int, usage_out: int) -> dict:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 0,
        "model": request.body.get("model"),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": usage_in,
            "completion_tokens": usage_out,
            "total_tokens": usage_in + usage_out,
        },
    }


def _anthropic_message(request: Request, text: str, usage_in: int, usage_out: int) -> dict:
    forced = (request.body.get("tool_choice") or {}).get("name")
    if forced:  # structured output through a forced tool: the reply text is its JSON input
        try:
            content = [
                {"type": "tool_use", "id": "toolu_fake", "name": forced, "input": json.loads(text)}
            ]
        except json.JSONDecodeError:
            content = [{"type": "text", "text": text}]
    else:
        content = [{"type": "text", "text": text}]
    return {
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "model": request.body.get("model"),
        "content": content,
        "stop_reason": "tool_use" if forced else "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": usage_in, "output_tokens": usage_out},
    }


def _error_body(fault: Fault, anthropic: bool) -> dict:
    if anthropic:
        return {"type": "error", "error": {"type": "api_error", "message": fault.message}}
    return {"error": {"message": fault.message, "type": "api_error", "code": None}}


def main() -> None:
    """`python -m tests.fake_llm [LATENCY]`: serve in this process until killed, replying
    "ok"; print the OpenAI base URL first. Controlled by POSTs to CONTROL_PATH."""
    with FakeLlmServer(
        reply=lambda request: "ok", latency=float((sys.argv[1:] or ["0"])[0])
    ) as server:
        print(server.openai_url, flush=True)
        threading.Event().wait()


if __name__ == "__main__":
    main()
