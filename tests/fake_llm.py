"""A local HTTP server that speaks the OpenAI and Anthropic wire formats.

The real SDKs talk to it over loopback. Tests script its answers (faults first, then replies),
and assert on its request log. Optional per-model rate limits answer 429 and send the
rate-limit headers the way the real providers do.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import socket
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.fake_batches import FakeBatches
from tests.fake_cache import PromptCache, block_text
from tests.fake_limits import Bucket, Limit, limit_headers, limit_message


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
        parts = [block_text(self.body.get("system") or "")]
        parts += [block_text(message.get("content")) for message in self.body.get("messages", [])]
        return "\n".join(parts)

    @property
    def token_cost(self) -> int:
        """What a provider charges against tokens per minute: the prompt (counted as the
        reported usage is, in words) plus the most the reply may take."""
        most = self.body.get("max_tokens") or self.body.get("max_completion_tokens") or 0
        return len(self.prompt_text.split()) + int(most)

    @property
    def tool_results(self) -> list[str]:
        """The tool results sent back so far, in either wire format."""
        found = []
        for message in self.body.get("messages", []):
            if message.get("role") == "tool":
                found.append(str(message.get("content")))
            content = message.get("content")
            if isinstance(content, list):
                found += [
                    str(block.get("content"))
                    for block in content
                    if isinstance(block, dict) and block.get("type") == "tool_result"
                ]
        return found

    @property
    def offered_tools(self) -> list[str]:
        tools = self.body.get("tools") or []
        return [tool.get("name") or tool.get("function", {}).get("name") for tool in tools]


@dataclass
class ToolUse:
    """A scripted tool call: a `reply` that returns a list of these asks for tool calls."""

    name: str
    arguments: dict[str, Any] = field(default_factory=dict)


@dataclass
class StreamBody:
    """A streamed reply: its server-sent events and the pause after each."""

    events: list[str]
    delay: float


CONTROL_PATH = "/_control"


def words(text: str) -> int:
    return len(text.split())


def utf8_bytes(text: str) -> int:
    """A token a byte: no byte-level BPE tokenizer (OpenAI's, Anthropic's) counts more."""
    return len(text.encode("utf-8"))


def default_reply(request: Request) -> str:
    return f"Hello from {request.body.get('model')}"


class FakeLlmServer:
    """Start with ``with FakeLlmServer() as server:``; ``openai_url``/``anthropic_url`` to use."""

    def __init__(
        self,
        reply: Callable[[Request], str | list[ToolUse]] = default_reply,
        latency: float = 0.0,
        limits: Mapping[str, Limit] | None = None,
    ):
        self.reply = reply
        self.latency = latency
        self.stream_pieces = 5
        """A streamed reply (`"stream": true`) comes in this many pieces..."""
        self.stream_delay = 0.0
        """...this many seconds apart."""
        self.limits: dict[str, Limit] = dict(limits or {})
        """Rate limits by model name; "*" for any model not named. Shared by every caller."""
        self.served: Counter[str] = Counter()
        """Requests let through, by model (limited or not); refused ones are in `refused`."""
        self.refused: Counter[str] = Counter()
        self.tokens_refused: Counter[str] = Counter()
        self._buckets: dict[tuple[str, str], Bucket] = {}
        self.requests: list[Request] = []
        self.fault_for: Callable[[Request], Fault | None] = lambda request: None
        """A fault chosen by the request itself, for tests where calls race."""
        self.in_flight = 0
        self.max_in_flight = 0
        self.tokens_of: Callable[[str], int] = words
        """How usage counts a prompt's or a reply's tokens: words, or a stricter tokenizer
        (`utf8_bytes`, the most any byte-level BPE tokenizer counts)."""
        self.cache = PromptCache(lambda text: self.tokens_of(text))
        """Prompt caching as the providers count it (tests/fake_cache.py)."""
        self.hidden_prompt_tokens = 0
        """Input tokens usage adds to every request, as a provider's own tool prompt does."""
        self._faults: deque[Fault] = deque()
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), self._handler())
        self.batches = FakeBatches(self._batched, self.url)
        """The providers' batch endpoints (tests/fake_batches.py)."""
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

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

    def _usage_in(self, request: Request) -> int:
        return self.tokens_of(request.prompt_text) + self.hidden_prompt_tokens

    def fail_next(self, *faults: Fault) -> None:
        with self._lock:
            self._faults.extend(faults)

    def __enter__(self) -> FakeLlmServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _answer(self, request: Request) -> tuple[int, dict[str, str], bytes | StreamBody | None]:
        anthropic = request.path.endswith("/messages")
        with self._lock:
            self.requests.append(request)
            unsupported = None if anthropic else _unsupported_by_reasoning_model(request.body)
            if unsupported is not None:
                return 400, {}, json.dumps(unsupported).encode()
            limit_headers, refusal = self._charge(request, anthropic)
            if refusal is not None:  # refused at the door: no latency, no fault used up
                return 429, limit_headers | refusal[0], refusal[1]
            fault = self.fault_for(request) or (self._faults.popleft() if self._faults else None)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.latency:
                time.sleep(self.latency)
        finally:
            with self._lock:
                self.in_flight -= 1
        status, headers, data = self._respond(request, fault, anthropic)
        return status, limit_headers | headers, data

    def _batched(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """A batched request's answer: as the realtime endpoint answers, but not paced."""
        status, _, data = self._respond(Request(path, {}, body), None, path.endswith("/messages"))
        assert status == 200 and isinstance(data, bytes)
        return json.loads(data)

    def _respond(
        self, request: Request, fault: Fault | None, anthropic: bool
    ) -> tuple[int, dict[str, str], bytes | StreamBody | None]:
        kind = fault.kind if fault else "ok"
        if kind == "reset":
            return 0, {}, None
        if kind == "malformed":
            return 200, {}, b'{"id": "broken", "choices": ['
        if fault is not None and kind == "status":
            return fault.status, fault.headers, json.dumps(_error_body(fault, anthropic)).encode()
        answer = self.reply(request) if kind not in ("empty", "refusal") else ""
        if isinstance(answer, list):
            number = len(self.requests)
            calls = _tool_calls(request, answer, anthropic, number, self._usage_in(request))
            return 200, {}, json.dumps(calls).encode()
        text = answer
        if kind == "length":
            text = text[: max(len(text) // 2, 1)]
        usage_in, usage_out = self._usage_in(request), self.tokens_of(text)
        with self._lock:
            cached = self.cache.use(request.body, anthropic)
        if anthropic:
            body = _anthropic_message(request, text, usage_in, usage_out)
            body["usage"] |= {
                "input_tokens": usage_in - cached.read - cached.written,
                "cache_read_input_tokens": cached.read,
                "cache_creation_input_tokens": cached.written,
                "service_tier": "standard",
            }
            if kind in ("refusal", "length"):
                body["stop_reason"] = "refusal" if kind == "refusal" else "max_tokens"
                body["content"] = [] if kind == "refusal" else body["content"]
        else:
            body = _openai_completion(request, text, usage_in, usage_out)
            body["usage"]["prompt_tokens_details"] = {"cached_tokens": cached.read}
            tier = request.body.get("service_tier")
            body["service_tier"] = tier if tier in ("flex", "priority") else "default"
            choice = body["choices"][0]
            if kind == "refusal":
                choice["message"] |= {"content": None, "refusal": "I can't help with that."}
            if kind == "length":
                choice["finish_reason"] = "length"
        if request.body.get("stream"):
            pieces = _pieces(text, self.stream_pieces)
            events = _anthropic_events(body, pieces) if anthropic else _openai_chunks(body, pieces)
            return 200, {}, StreamBody(events, self.stream_delay)
        return 200, {}, json.dumps(body).encode()

    def _charge(
        self, request: Request, anthropic: bool
    ) -> tuple[dict[str, str], tuple[dict[str, str], bytes] | None]:
        """Charge a request to its model's buckets (the caller holds the lock): the rate-limit
        headers, and the 429's own headers and body if it does not fit (then nothing is
        charged)."""
        model = str(request.body.get("model"))
        limit = self.limits.get(model) or self.limits.get("*") or Limit()
        buckets, now = {}, time.monotonic()
        for kind, allowed in (
            ("requests", limit.requests_per_minute),
            ("tokens", limit.tokens_per_minute),
        ):
            bucket = self._buckets.get((model, kind))
            if allowed and (bucket is None or bucket.per_minute != allowed):
                bucket = self._buckets[(model, kind)] = Bucket(allowed, now)
            if allowed:
                bucket.refill(now)
                buckets[kind] = bucket
        costs = {"requests": 1, "tokens": request.token_cost}
        waits = {kind: bucket.wait(costs[kind]) for kind, bucket in buckets.items()}
        if "tokens" in buckets and costs["tokens"] > buckets["tokens"].per_minute:
            waits["tokens"] = math.inf  # larger than a minute's worth: never fits
        blocked = max(waits, key=waits.__getitem__) if any(waits.values()) else None
        if blocked is None:
            for kind, bucket in buckets.items():
                bucket.level -= costs[kind]
            self.served[model] += 1
        else:
            self.refused[model] += 1
            self.tokens_refused[model] += costs["tokens"]
        headers = limit_headers(buckets, anthropic)
        if blocked is None:
            return headers, None
        wait = waits[blocked]  # the longer wait, the one that decides when to come back
        per_minute = buckets[blocked].per_minute
        message = limit_message(model, blocked, per_minute, costs[blocked], wait)
        retry = {}
        if wait < math.inf:
            retry["retry-after"] = str(max(1, math.ceil(wait)))
            if not anthropic:
                retry["retry-after-ms"] = str(math.ceil(wait * 1000))
        if anthropic:
            body = {"type": "error", "error": {"type": "rate_limit_error", "message": message}}
        else:
            body = {"error": {"message": message, "type": blocked, "code": "rate_limit_exceeded"}}
        return headers, (retry, json.dumps(body).encode())

    def _control(self, command: dict[str, Any]) -> dict[str, Any]:
        """For a server in another process (the benchmark's): set the latency and the limits
        (a model name, or "*", to {requests_per_minute, tokens_per_minute}; replaces all), and
        read the request log (arrival times and prompts) and the counters; `clear` empties
        the log and the counters and refills the buckets."""
        with self._lock:
            if "latency" in command:
                self.latency = float(command["latency"])
            if "limits" in command:
                self.limits = {m: Limit(**spec) for m, spec in (command["limits"] or {}).items()}
                self._buckets.clear()
            answer = {
                "latency": self.latency,
                "limits": {model: asdict(limit) for model, limit in self.limits.items()},
                "served": dict(self.served),
                "refused": dict(self.refused),
                "tokens_refused": dict(self.tokens_refused),
                "requests": [
                    {"received_at": r.received_at, "prompt": r.body["messages"][-1]["content"]}
                    for r in self.requests
                ],
            }
            if command.get("clear"):
                self.requests.clear()
                for counter in (self.served, self.refused, self.tokens_refused):
                    counter.clear()
                self._buckets.clear()
                self.cache.clear()
        return answer

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                status, answer = server.batches.get(self.path)
                data = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
                self._reply(status, {}, data)

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("content-length", 0))
                raw = self.rfile.read(length)
                if server.batches.handles(self.path):
                    headers = {k.lower(): v for k, v in self.headers.items()}
                    status, answer = server.batches.post(self.path, headers, raw)
                    self._reply(status, {}, json.dumps(answer).encode())
                    return
                body = json.loads(raw or b"{}")
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
                if isinstance(data, StreamBody):
                    self._stream(headers, data)
                    return
                self._reply(status, headers, data)

            def _stream(self, headers: dict[str, str], body: StreamBody) -> None:
                """Server-sent events, one piece at a time, as the providers stream."""
                self.close_connection = True
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("connection", "close")
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                for event in body.events:
                    self.wfile.write(event.encode())
                    self.wfile.flush()
                    time.sleep(body.delay)

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


def _tool_calls(
    request: Request, uses: list[ToolUse], anthropic: bool, number: int, usage_in: int
) -> dict:
    """A reply that asks for tool calls, in the request's wire format."""
    usage_out = 5 * len(uses)
    if anthropic:
        body = _anthropic_message(request, "", usage_in, usage_out)
        body["content"] = [
            {
                "type": "tool_use",
                "id": f"toolu_{number}_{n}",
                "name": use.name,
                "input": use.arguments,
            }
            for n, use in enumerate(uses)
        ]
        body["stop_reason"] = "tool_use"
        return body
    body = _openai_completion(request, "", usage_in, usage_out)
    choice = body["choices"][0]
    choice["finish_reason"] = "tool_calls"
    choice["message"] = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": f"call_{number}_{n}",
                "type": "function",
                "function": {"name": use.name, "arguments": json.dumps(use.arguments)},
            }
            for n, use in enumerate(uses)
        ],
    }
    return body


def _pieces(text: str, count: int) -> list[str]:
    words = text.split(" ")
    size = max(1, -(-len(words) // max(count, 1)))
    chunks = [" ".join(words[i : i + size]) for i in range(0, len(words), size)]
    return [chunk + (" " if n < len(chunks) - 1 else "") for n, chunk in enumerate(chunks)]


def _openai_chunks(body: dict, pieces: list[str]) -> list[str]:
    """OpenAI's chat.completion.chunk stream: deltas, the finish, usage, then [DONE]."""
    base = {
        "id": body["id"],
        "object": "chat.completion.chunk",
        "created": 0,
        "model": body["model"],
        "service_tier": body.get("service_tier"),
    }
    finish = body["choices"][0]["finish_reason"]
    chunks = [
        base
        | {
            "choices": [
                {
                    "index": 0,
                    "delta": {"content": piece} | ({"role": "assistant"} if n == 0 else {}),
                    "finish_reason": None,
                }
            ]
        }
        for n, piece in enumerate(pieces)
    ]
    refusal = body["choices"][0]["message"].get("refusal")
    if refusal:  # a refusal streams as refusal deltas, with no content
        delta = {"role": "assistant", "content": None, "refusal": refusal}
        chunks = [base | {"choices": [{"index": 0, "delta": delta, "finish_reason": None}]}]
    chunks.append(base | {"choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
    chunks.append(base | {"choices": [], "usage": body["usage"]})
    return [f"data: {json.dumps(chunk)}\n\n" for chunk in chunks] + ["data: [DONE]\n\n"]


def _anthropic_events(body: dict, pieces: list[str]) -> list[str]:
    """Anthropic's Messages stream: message_start, one text block's deltas, message_delta."""
    start = body | {"content": [], "stop_reason": None}
    start["usage"] = body["usage"] | {"output_tokens": 1}
    events: list[tuple[str, dict]] = [
        ("message_start", {"type": "message_start", "message": start}),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ),
    ]
    events += [
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": piece},
            },
        )
        for piece in pieces
    ]
    events += [
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": body["stop_reason"], "stop_sequence": None},
                "usage": {"output_tokens": body["usage"]["output_tokens"]},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
    return [f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events]


REASONING_MODELS = re.compile(r"^(o[1-9]|gpt-5)")
"""OpenAI's reasoning models, as the real Chat Completions API treats them (written here
apart from the engine's provider table, so a test against this server checks the table)."""


def _unsupported_by_reasoning_model(body: dict[str, Any]) -> dict | None:
    """OpenAI's 400 for what its reasoning models refuse: `max_tokens` (they take
    `max_completion_tokens`) and any `temperature` but the default 1."""
    if not REASONING_MODELS.match(str(body.get("model"))):
        return None
    if "max_tokens" in body:
        message = (
            "Unsupported parameter: 'max_tokens' is not supported with this model. "
            "Use 'max_completion_tokens' instead."
        )
        param, code = "max_tokens", "unsupported_parameter"
    elif body.get("temperature", 1) != 1:
        message = (
            f"Unsupported value: 'temperature' does not support {body['temperature']} with "
            "this model. Only the default (1) value is supported."
        )
        param, code = "temperature", "unsupported_value"
    else:
        return None
    error = {"message": message, "type": "invalid_request_error", "param": param, "code": code}
    return {"error": error}


def _error_body(fault: Fault, anthropic: bool) -> dict:
    if anthropic:
        return {"type": "error", "error": {"type": "api_error", "message": fault.message}}
    return {"error": {"message": fault.message, "type": "api_error", "code": None}}


def main() -> None:
    """`python -m tests.fake_llm [LATENCY] [--rpm N] [--tpm N]`: serve in this process until
    killed, replying "ok", with the limits (if any) on every model; print the OpenAI base URL
    first. Controlled by POSTs to CONTROL_PATH."""
    parser = argparse.ArgumentParser(prog="python -m tests.fake_llm")
    parser.add_argument("latency", type=float, nargs="?", default=0.0)
    parser.add_argument("--rpm", type=int, help="requests per minute, for every model")
    parser.add_argument("--tpm", type=int, help="tokens per minute, for every model")
    args = parser.parse_args()
    limits = {"*": Limit(args.rpm, args.tpm)} if args.rpm or args.tpm else {}
    with FakeLlmServer(reply=lambda request: "ok", latency=args.latency, limits=limits) as server:
        print(server.openai_url, flush=True)
        threading.Event().wait()


if __name__ == "__main__":
    main()
