"""The worker's MCP client: the tools of the MCP servers configured on it (MCP_SERVERS), listed
and called through the official `mcp` SDK, over stdio or streamable HTTP.

One session per list or call: a stdio server starts, answers and is stopped each time. That
costs the server's start-up per call, and buys what a pool would have to work for: nothing
outlives the activity (a cancelled or timed-out call stops its server, by the SDK's shielded
shutdown), and a crashed or wedged server costs one attempt, not the worker.

The SDK loads inside the calls, so settings (and `starter.py validate`) stay quick to import.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

from workflows.contracts import ToolDef

if TYPE_CHECKING:
    from mcp import ClientSession
    from mcp.types import CallToolResult, ContentBlock, Tool

T = TypeVar("T")
FIELDS = ("command", "env", "url", "headers")
EXAMPLE = (
    '{"time": {"command": ["python", "-m", "mcp_server_time"]}, '
    '"docs": {"url": "https://host/mcp", "headers": {"Authorization": "Bearer ..."}}}'
)


class McpUnavailable(Exception):
    """The server could not be started or reached, failed, or did not answer in time: worth
    retrying (a call it refuses as invalid is not this, but an error result for the model)."""


@dataclass(frozen=True)
class McpServer:
    name: str
    command: tuple[str, ...] = ()
    """stdio: the program and its arguments."""
    env: Mapping[str, str] = field(default_factory=dict)
    """stdio: environment for the program, over the SDK's few safe defaults (PATH, HOME, ...):
    the worker's own environment, with its keys, is not passed on."""
    url: str | None = None
    """Streamable HTTP: the endpoint."""
    headers: Mapping[str, str] = field(default_factory=dict)
    """HTTP: sent with every request (e.g. Authorization)."""


def read_servers(text: str) -> dict[str, McpServer]:
    """MCP_SERVERS, JSON: `{"time": {"command": ["python", "-m", "mcp_server_time"]},
    "docs": {"url": "http://host:8000/mcp", "headers": {"Authorization": "Bearer ..."}}}`."""
    if not text.strip():
        return {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"MCP_SERVERS is not JSON ({exc}): write e.g. {EXAMPLE}") from None
    if not isinstance(data, dict):
        raise ValueError(f"MCP_SERVERS: write an object of servers by name, e.g. {EXAMPLE}")
    return {name: _read_server(name, spec) for name, spec in data.items()}


def _read_server(name: str, spec: Any) -> McpServer:
    where = f"MCP_SERVERS: server {name!r}"
    if not name.strip():
        raise ValueError("MCP_SERVERS: a server has an empty name: name each one")
    if not isinstance(spec, dict):
        raise ValueError(f'{where}: write {{"command": [...]}} or {{"url": "..."}}')
    if unknown := sorted(set(spec) - set(FIELDS)):
        raise ValueError(f"{where}: unknown field {unknown[0]!r}: write one of {', '.join(FIELDS)}")
    command, url = spec.get("command"), spec.get("url")
    if (command is None) == (url is None):
        raise ValueError(
            f'{where}: write either "command": ["program", "arg", ...] (stdio) '
            'or "url": "https://host/mcp" (streamable HTTP)'
        )
    if command is not None and not (
        isinstance(command, list)
        and command
        and all(isinstance(part, str) and part for part in command)
    ):
        raise ValueError(f'{where}: "command" is a list of strings, e.g. ["python", "-m", "x"]')
    if url is not None and not (isinstance(url, str) and url.startswith(("http://", "https://"))):
        raise ValueError(f'{where}: "url" is an http(s) address, e.g. "https://host/mcp"')
    env, headers = _strings(where, spec, "env"), _strings(where, spec, "headers")
    if env and url is not None:
        raise ValueError(f'{where}: "env" is for a command; an HTTP server takes "headers"')
    if headers and command is not None:
        raise ValueError(f'{where}: "headers" are for a url; a command takes "env"')
    return McpServer(name, tuple(command or ()), env, url, headers)


def _strings(where: str, spec: dict[str, Any], key: str) -> dict[str, str]:
    value = spec.get(key, {})
    if not (isinstance(value, dict) and all(isinstance(v, str) for v in value.values())):
        raise ValueError(f'{where}: "{key}" is an object of strings, e.g. {{"NAME": "value"}}')
    return value


async def list_tools(server: McpServer, timeout: float = 60.0) -> list[ToolDef]:
    """Every tool the server offers, as the model is offered it."""

    async def work(session: ClientSession) -> list[ToolDef]:
        tools: list[Tool] = []
        cursor = None
        while True:
            page = await session.list_tools(params=_page(cursor))
            tools += page.tools
            if not (cursor := page.next_cursor):
                break
        return [
            ToolDef(
                name=tool.name,
                description=tool.description or "",
                parameters=tool.input_schema,
                kind="mcp",
                target=server.name,
            )
            for tool in tools
        ]

    return await _in_session(server, work, timeout)


async def call_tool(
    server: McpServer, tool: str, arguments: dict[str, Any], timeout: float = 60.0
) -> tuple[str, bool]:
    """The tool's answer as text for the model, and whether it is an error. A call the server
    refuses as invalid (an unknown tool, bad arguments) is the model's to read, not raised;
    any other error from the server makes it unavailable."""
    from mcp import MCPError
    from mcp.types import INVALID_PARAMS

    async def work(session: ClientSession) -> tuple[str, bool]:
        try:
            result = await session.call_tool(tool, arguments)
        except MCPError as exc:
            if exc.code != INVALID_PARAMS:
                raise
            return exc.message, True
        return _answer(result)

    return await _in_session(server, work, timeout)


def _answer(result: CallToolResult) -> tuple[str, bool]:
    """The text of a tool's result; its structured content as JSON when it has no text."""
    text = "\n".join(_text(block) for block in result.content)
    if not text and result.structured_content is not None:
        text = json.dumps(result.structured_content, ensure_ascii=False)
    return text, result.is_error


async def _in_session(
    server: McpServer, work: Callable[[ClientSession], Awaitable[T]], timeout: float
) -> T:
    """`work(session)` on a new session, all within `timeout` (the server's start included).
    A server that cannot be reached, or fails, raises McpUnavailable naming it, with the last
    line of its stderr (or the HTTP status it answered with). A cancellation propagates."""
    import anyio

    with tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as errlog:
        try:
            with anyio.fail_after(timeout):
                async with _session(server, errlog, timeout) as session:
                    return await work(session)
        except Exception as exc:
            cause = _first_leaf(exc)
            if not (reason := _why_unavailable(cause, timeout)):
                if cause is exc:
                    raise
                raise cause from None  # as it was raised, not in the SDK's task groups
            errlog.seek(0)
            said = [line.strip() for line in errlog.read().splitlines() if line.strip()]
            last = f"; it said: {said[-1]}" if said else ""
            where = server.url or " ".join(server.command)
            raise McpUnavailable(f"MCP server {server.name!r} ({where}): {reason}{last}") from exc


@asynccontextmanager
async def _session(
    server: McpServer, errlog: TextIO, timeout: float
) -> AsyncIterator[ClientSession]:
    """An initialized session. `errlog` gets the stdio server's stderr, or the HTTP statuses
    of failed requests (the SDK turns them into JSON-RPC errors without the status)."""
    from mcp import ClientSession, StdioServerParameters, stdio_client

    if server.url is None:
        program, *args = server.command
        params = StdioServerParameters(command=program, args=args, env=dict(server.env))
        async with (
            stdio_client(params, errlog=errlog) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            yield session
        return

    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    async def note_failure(response: httpx2.Response) -> None:
        if response.is_error:
            errlog.write(f"HTTP {response.status_code} {response.reason_phrase}\n")

    http = httpx2.AsyncClient(
        headers=dict(server.headers), timeout=timeout, event_hooks={"response": [note_failure]}
    )
    async with (
        http,
        streamable_http_client(server.url, http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


def _first_leaf(exc: Exception) -> Exception:
    """What went wrong: task groups in the SDK wrap what their tasks raise."""
    while isinstance(exc, ExceptionGroup):
        exc = exc.exceptions[0]
    return exc


def _why_unavailable(exc: Exception, timeout: float) -> str | None:
    """Why the server is of no use, or None for any other error."""
    import httpx2
    from mcp import MCPError

    if isinstance(exc, TimeoutError):  # anyio.fail_after's
        return f"no answer within {timeout:g} s"
    if isinstance(exc, MCPError):  # connection closed, an error answer to a request
        return exc.message
    if isinstance(exc, httpx2.HTTPError):  # connection refused, a name that does not resolve
        return str(exc) or type(exc).__name__
    if isinstance(exc, OSError):  # the program cannot be started
        return f"cannot start it: {exc.strerror or exc}"
    return None


def _text(block: ContentBlock) -> str:
    """A content block as text: text as it is, media by type, a resource link as its JSON."""
    from mcp.types import AudioContent, EmbeddedResource, ImageContent, TextContent
    from mcp.types import TextResourceContents as TextResource

    if isinstance(block, TextContent):
        return block.text
    if isinstance(block, ImageContent | AudioContent):
        return f"[{block.type}: {block.mime_type}]"
    if isinstance(block, EmbeddedResource):
        resource = block.resource
        if isinstance(resource, TextResource):
            return resource.text
        return f"[resource: {resource.uri} {resource.mime_type or ''}]".replace(" ]", "]")
    return block.model_dump_json(by_alias=True, exclude_none=True)


def _page(cursor: str | None) -> Any:
    from mcp.types import PaginatedRequestParams

    return PaginatedRequestParams(cursor=cursor) if cursor else None
