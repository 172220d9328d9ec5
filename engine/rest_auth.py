"""The REST API's gate: bearer tokens, per-token rate limits, a body size limit and one log
line per request, as one ASGI middleware in front of the application (engine/rest.py).

Tokens come from the operator only: `API_TOKENS` (comma-separated `name=token` pairs) and the
file `API_TOKENS_FILE` names (one pair per line, `#` comments). `name:read=token` limits a
token to reading. Logs and errors carry the token's name, never the token.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.exceptions import HTTPException

from workflows.errors import UsageError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

DEFAULT_RATE_PER_MINUTE = 300
DEFAULT_MAX_BODY_BYTES = 2_000_000
"""Room for a definition of activities/definitions.MAX_DEFINITION_BYTES, JSON-escaped."""
DEFAULT_MAX_STREAMS_PER_TOKEN = 100
DEFAULT_MAX_STREAMS = 1000
"""Open event streams; each holds a connection (the status poll is shared per run)."""
PUBLIC_PATHS = frozenset({"/openapi.json", "/docs", "/docs/oauth2-redirect", "/health"})
"""Paths anyone may read: the API's description and a liveness probe, nothing of the runs."""
PUBLIC_PREFIXES = ("/sign-in", "/static/")
"""The workbench's sign-in form and its assets (engine/web_security.py)."""
OPEN_ACCESS = "local"
"""The name requests go by when no token is configured (allowed on loopback only)."""
SELF_PROVEN_PREFIX = "/triggers/"
"""Webhooks: each trigger checks its own signature or token (engine/triggers.py)."""

log = logging.getLogger("engine.rest")


@dataclass(frozen=True)
class ApiToken:
    name: str
    token: str = field(repr=False)
    read_only: bool = False


@dataclass(frozen=True)
class ApiConfig:
    """What the operator configured for the REST API (read by `from_env` in `serve`)."""

    tokens: tuple[ApiToken, ...] = ()
    rate_per_minute: int = DEFAULT_RATE_PER_MINUTE
    """Requests per token per minute (bursts up to the same number)."""
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_streams_per_token: int = DEFAULT_MAX_STREAMS_PER_TOKEN
    """Event streams one token may have open at once."""
    max_streams: int = DEFAULT_MAX_STREAMS
    """Event streams open at once, all tokens together."""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ApiConfig:
        """API_TOKENS, API_TOKENS_FILE, API_RATE_PER_MINUTE, API_MAX_BODY_BYTES,
        API_MAX_STREAMS_PER_TOKEN, API_MAX_STREAMS."""
        tokens = parse_tokens(env.get("API_TOKENS", ""), "API_TOKENS")
        if env.get("API_TOKENS_FILE"):
            path = Path(env["API_TOKENS_FILE"])
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise UsageError(f"API_TOKENS_FILE {path}: {exc}") from None
            lines = [line.split("#", 1)[0] for line in text.splitlines()]
            tokens += parse_tokens(",".join(lines), f"API_TOKENS_FILE {path}")
        _refuse_duplicates(tokens)
        return cls(
            tokens=tokens,
            rate_per_minute=_positive(env, "API_RATE_PER_MINUTE", DEFAULT_RATE_PER_MINUTE),
            max_body_bytes=_positive(env, "API_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES),
            max_streams_per_token=_positive(
                env, "API_MAX_STREAMS_PER_TOKEN", DEFAULT_MAX_STREAMS_PER_TOKEN
            ),
            max_streams=_positive(env, "API_MAX_STREAMS", DEFAULT_MAX_STREAMS),
        )


def parse_tokens(text: str, source: str) -> tuple[ApiToken, ...]:
    """`name=token` pairs, comma-separated; `name:read=token` is a read-only token."""
    tokens = []
    for number, pair in enumerate((p.strip() for p in text.split(",") if p.strip()), 1):
        name, sep, token = pair.partition("=")
        name, _, access = name.strip().partition(":")
        token = token.strip()
        if not sep or not name or not token:
            raise UsageError(f"{source}: entry {number} is not name=token")
        if access not in ("", "read"):
            raise UsageError(f"{source}: {name!r}: write name=token or name:read=token")
        if not all(c.isalnum() or c in "-_." for c in name):
            raise UsageError(f"{source}: token name {name!r}: use letters, digits, - _ .")
        tokens.append(ApiToken(name, token, read_only=access == "read"))
    return tuple(tokens)


def _refuse_duplicates(tokens: tuple[ApiToken, ...]) -> None:
    names = [t.name for t in tokens]
    for name in names:
        if names.count(name) > 1:
            raise UsageError(f"API tokens: the name {name!r} is given twice")
    if len({t.token for t in tokens}) < len(tokens):
        raise UsageError("API tokens: two names share one token")


def _positive(env: Mapping[str, str], name: str, default: int) -> int:
    text = env.get(name) or str(default)
    if not text.isdigit() or int(text) < 1:
        raise UsageError(f"{name}={text!r}: give a positive whole number")
    return int(text)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Tokens:
    """Finds a token's owner comparing digests in constant time, against every token."""

    def __init__(self, tokens: tuple[ApiToken, ...]) -> None:
        self._known = [(hashlib.sha256(t.token.encode()).digest(), t) for t in tokens]

    def __bool__(self) -> bool:
        return bool(self._known)

    def find(self, given: str) -> ApiToken | None:
        digest = hashlib.sha256(given.encode("utf-8", "surrogatepass")).digest()
        found = None
        for known, token in self._known:  # no early exit: every token costs the same
            if hmac.compare_digest(digest, known):
                found = token
        return found


class RateLimiter:
    """A token bucket per key: `per_minute` requests a minute, bursts up to as many."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = float(per_minute)
        self.per_second = per_minute / 60.0
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, key: str) -> float:
        """Spend one request; 0 if allowed, else the seconds until the next is."""
        now = self._clock()
        level, then = self._buckets.get(key, (self.capacity, now))
        level = min(self.capacity, level + (now - then) * self.per_second)
        if level < 1:
            self._buckets[key] = (level, now)
            return (1 - level) / self.per_second
        self._buckets[key] = (level - 1, now)
        if len(self._buckets) > 10_000:  # forget full buckets: they say nothing
            self._buckets = {
                k: v for k, v in self._buckets.items() if v[0] < self.capacity - 1 or k == key
            }
        return 0.0


class Gate:
    """ASGI middleware: authenticate, rate-limit, cap the body, log. Answers 401, 413 and
    429 itself, before the application sees the request (so nothing starts)."""

    def __init__(self, app: App, config: ApiConfig) -> None:
        self.app = app
        self.config = config
        self.tokens = Tokens(config.tokens)
        self.limiter = RateLimiter(config.rate_per_minute)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        status: list[int] = [0]

        async def logged_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        state = scope.setdefault("state", {})
        try:
            await self._pass(scope, receive, logged_send, state)
        finally:
            log.info(
                "%s %s %s by %s",
                scope["method"],
                scope["path"],
                status[0],
                state.get("token_name", "-"),
                extra={
                    "token_name": state.get("token_name", "-"),
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status[0],
                    "ms": round((time.monotonic() - started) * 1000, 1),
                },
            )

    async def _pass(
        self, scope: Scope, receive: Receive, send: Send, state: dict[str, Any]
    ) -> None:
        if scope["path"] in PUBLIC_PATHS or scope["path"].startswith(PUBLIC_PREFIXES):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        client = (scope.get("client") or ("-", 0))[0]
        if scope["path"].startswith(SELF_PROVEN_PREFIX):
            token = ApiToken("webhook", "")  # rate-limited and capped as one token
        elif self.tokens:
            scheme, _, given = headers.get("authorization", "").partition(" ")
            found = self.tokens.find(given.strip()) if scheme.lower() == "bearer" else None
            if found is None:
                wait = self.limiter.take(f"failed auth from {client}")
                if wait:
                    await _too_many(send, wait)
                    return
                message = (
                    "this token is not valid"
                    if "authorization" in headers
                    else "send Authorization: Bearer <token>"
                )
                await _error(
                    send, 401, "unauthorized", message, {"www-authenticate": 'Bearer realm="api"'}
                )
                return
            token = found
        else:
            token = ApiToken(OPEN_ACCESS, "")
        state["token_name"] = token.name
        state["read_only"] = token.read_only
        wait = self.limiter.take(f"token {token.name}")
        if wait:
            await _too_many(send, wait)
            return
        await self._limited(scope, receive, send, headers)

    async def _limited(
        self, scope: Scope, receive: Receive, send: Send, headers: dict[str, str]
    ) -> None:
        limit = self.config.max_body_bytes
        length = headers.get("content-length", "")
        if length and (not length.isdigit() or int(length) > limit):
            await _too_large(send, limit)
            return
        received = 0
        answered = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:  # FastAPI lets an HTTPException from here through
                    raise HTTPException(413, _too_large_message(limit))
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal answered
            answered = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracked_send)
        except HTTPException as exc:
            if exc.status_code != 413 or answered:
                raise
            await _too_large(send, limit)


def _too_large_message(limit: int) -> str:
    return f"the request body is over {limit} bytes"


async def _too_large(send: Send, limit: int) -> None:
    await _error(send, 413, "too_large", _too_large_message(limit))


async def _too_many(send: Send, wait: float) -> None:
    seconds = max(1, math.ceil(wait))
    message = f"too many requests: try again in {seconds} s"
    await _error(send, 429, "rate_limited", message, {"retry-after": str(seconds)})


async def _error(
    send: Send, status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> None:
    body = json.dumps({"error": code, "message": message, "problems": []}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
