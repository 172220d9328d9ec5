"""The worker's MCP client against a real MCP server we did not write (mcp-server-time from
PyPI): over stdio as a child process, and over streamable HTTP served in this event loop."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from activities.mcp_servers import (
    McpServer,
    McpUnavailable,
    _answer,
    call_tool,
    list_tools,
    read_servers,
)
from engine.settings import Settings
from tests.conftest import free_port
from workflows.errors import UsageError

TIME = McpServer(
    "time", command=(sys.executable, "-m", "mcp_server_time", "--local-timezone", "UTC")
)
MUTE = McpServer("mute", command=(sys.executable, "-c", "import time; time.sleep(60)"))
"""Starts and never answers."""
TOKEN = "Bearer s3cret"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", {}),
        (
            '{"time": {"command": ["python", "-m", "mcp_server_time"], "env": {"TZ": "UTC"}}}',
            {"time": McpServer("time", ("python", "-m", "mcp_server_time"), {"TZ": "UTC"})},
        ),
        (
            '{"docs": {"url": "http://host:8000/mcp", "headers": {"Authorization": "Bearer x"}}}',
            {
                "docs": McpServer(
                    "docs", url="http://host:8000/mcp", headers={"Authorization": "Bearer x"}
                )
            },
        ),
    ],
)
def test_servers_are_read_from_the_worker_setting(text, expected):
    assert read_servers(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("time: python -m x", "MCP_SERVERS is not JSON (.*): write e.g. {"),
        ('["python"]', "MCP_SERVERS: write an object of servers by name"),
        ('{"time": "python -m x"}', r"server 'time': write {\"command\": \[...\]} or"),
        ('{"time": {}}', 'server \'time\': write either "command": .* or "url"'),
        ('{"t": {"command": ["x"], "url": "http://h/mcp"}}', "server 't': write either"),
        ('{"t": {"command": "python -m x"}}', "server 't': \"command\" is a list of strings"),
        ('{"t": {"command": []}}', '"command" is a list of strings'),
        ('{"t": {"url": "host:8000/mcp"}}', "server 't': \"url\" is an http\\(s\\) address"),
        ('{"t": {"command": ["x"], "env": {"N": 1}}}', '"env" is an object of strings'),
        ('{"t": {"command": ["x"], "headers": {"A": "b"}}}', '"headers" are for a url'),
        ('{"t": {"url": "http://h/mcp", "env": {"A": "b"}}}', '"env" is for a command'),
        ('{"t": {"comand": ["x"]}}', "unknown field 'comand': write one of command, env, url"),
    ],
)
def test_bad_servers_are_refused_saying_what_to_write(text, message):
    with pytest.raises(ValueError, match=message) as refused:
        read_servers(text)
    assert "\n" not in str(refused.value)


def test_settings_read_mcp_servers_and_refuse_bad_ones_as_usage_errors():
    servers = {"time": {"command": ["python", "-m", "mcp_server_time"]}}
    assert Settings.from_env({"MCP_SERVERS": json.dumps(servers)}, connection=False).mcp_servers[
        "time"
    ] == McpServer("time", ("python", "-m", "mcp_server_time"))
    with pytest.raises(UsageError, match="server 'time'"):
        Settings.from_env({"MCP_SERVERS": '{"time": {}}'}, connection=False)


async def test_the_tools_of_a_stdio_server_are_listed_with_their_schemas():
    tools = {tool.name: tool for tool in await list_tools(TIME)}
    assert set(tools) == {"get_current_time", "convert_time"}
    current = tools["get_current_time"]
    assert (current.kind, current.target) == ("mcp", "time")
    assert current.description
    assert current.parameters["type"] == "object"
    assert current.parameters["required"] == ["timezone"]
    assert set(tools["convert_time"].parameters["properties"]) == {
        "source_timezone",
        "time",
        "target_timezone",
    }


async def test_a_call_answers_with_the_tools_text():
    text, is_error = await call_tool(TIME, "get_current_time", {"timezone": "Asia/Tokyo"})
    assert not is_error
    answer = json.loads(text)
    assert answer["timezone"] == "Asia/Tokyo"
    assert answer["datetime"].endswith("+09:00")


@pytest.mark.parametrize(
    ("tool", "arguments", "said"),
    [
        ("get_current_time", {"timezone": "Mars/Base"}, "Invalid timezone"),
        ("get_current_time", {}, "timezone"),
        (
            "convert_time",
            {"source_timezone": "UTC", "time": "25:99", "target_timezone": "UTC"},
            "HH:MM",
        ),
        ("get_weather", {}, "Unknown tool: get_weather"),
    ],
)
async def test_a_refused_call_is_an_error_for_the_model_to_read(tool, arguments, said):
    text, is_error = await call_tool(TIME, tool, arguments)
    assert is_error
    assert said in text


def _result(*content: dict[str, Any], **fields: Any) -> Any:
    from mcp.types import CallToolResult

    return CallToolResult.model_validate({"content": list(content), **fields})


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        (_result({"type": "text", "text": "a"}, {"type": "text", "text": "b"}), ("a\nb", False)),
        (
            _result({"type": "image", "data": "aGk=", "mimeType": "image/png"}),
            ("[image: image/png]", False),
        ),
        (
            _result({"type": "audio", "data": "aGk=", "mimeType": "audio/wav"}),
            ("[audio: audio/wav]", False),
        ),
        (
            _result({"type": "resource", "resource": {"uri": "file:///a", "text": "A"}}),
            ("A", False),
        ),
        (
            _result({"type": "resource", "resource": {"uri": "file:///b", "blob": "aGk="}}),
            ("[resource: file:///b]", False),
        ),
        (
            _result({"type": "resource_link", "uri": "file:///c", "name": "c"}),
            ('{"name":"c","uri":"file:///c","type":"resource_link"}', False),
        ),
        (_result(structuredContent={"n": 1}), ('{"n": 1}', False)),
        (_result({"type": "text", "text": "no"}, isError=True), ("no", True)),
    ],
)
def test_a_result_is_text_for_the_model(result, expected):
    """What a server we cannot provoke would answer: media, resources, structured content."""
    assert _answer(result) == expected


async def test_a_program_that_cannot_start_is_unavailable_naming_the_server():
    server = McpServer("clock", command=("no-such-mcp-server",))
    with pytest.raises(McpUnavailable, match="MCP server 'clock' .*cannot start it: No such file"):
        await list_tools(server)


async def test_a_server_that_exits_is_unavailable_with_what_it_said():
    server = McpServer("clock", command=(sys.executable, "-m", "no_such_mcp_server"))
    with pytest.raises(McpUnavailable, match="'clock' .*No module named no_such_mcp_server"):
        await call_tool(server, "get_current_time", {})


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the process table")
async def test_a_server_that_does_not_answer_times_out_and_is_stopped():
    with pytest.raises(McpUnavailable, match="MCP server 'mute' .*: no answer within 1 s"):
        await call_tool(MUTE, "anything", {}, timeout=1)
    assert not _children("time.sleep(60)")


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the process table")
async def test_a_cancelled_call_leaves_no_server_behind():
    """As when Temporal cancels the activity: the task is cancelled while the server runs."""
    for server, marker in [(TIME, "mcp_server_time"), (MUTE, "time.sleep(60)")]:
        call = asyncio.create_task(call_tool(server, "get_current_time", {"timezone": "UTC"}))
        for _ in range(500):
            if _children(marker):
                break
            await asyncio.sleep(0.01)
        assert _children(marker), "the server did not start"
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        assert not _children(marker)


async def test_a_streamable_http_server_is_listed_and_called_with_its_headers():
    async with _time_over_http() as url:
        server = McpServer("docs", url=url, headers={"Authorization": TOKEN})
        assert {tool.name for tool in await list_tools(server)} == {
            "get_current_time",
            "convert_time",
        }
        text, is_error = await call_tool(server, "get_current_time", {"timezone": "UTC"})
        assert not is_error
        assert json.loads(text)["timezone"] == "UTC"
        assert await call_tool(server, "get_weather", {}) == ("Unknown tool: get_weather", True)
        with pytest.raises(McpUnavailable, match="MCP server 'bare' .*401"):
            await list_tools(McpServer("bare", url=url))


async def test_an_http_server_that_is_not_there_is_unavailable():
    url = f"http://127.0.0.1:{free_port()}/mcp"
    with pytest.raises(McpUnavailable, match=f"MCP server 'docs' \\({url}\\): "):
        await call_tool(McpServer("docs", url=url), "get_current_time", {})


@contextlib.asynccontextmanager
async def _time_over_http() -> AsyncIterator[str]:
    """mcp-server-time's own server, served over streamable HTTP behind a bearer token."""
    from mcp_server_time.server import create_server

    app = create_server("UTC").streamable_http_app()

    async def guarded(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and (b"authorization", TOKEN.encode()) not in scope["headers"]:
            await send({"type": "http.response.start", "status": 401, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        await app(scope, receive, send)

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(guarded, host="127.0.0.1", port=port, log_config=None, access_log=False)
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done(), "uvicorn did not start"
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        server.should_exit = True
        await task


def _children(marker: str) -> set[int]:
    """Live (not zombie) child processes of this one whose command line holds `marker`."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, parent = stat.read_text().rsplit(") ", 1)[1].split()[:2]
            command = (stat.parent / "cmdline").read_bytes()
        except (OSError, IndexError):
            continue
        if int(parent) == os.getpid() and state != "Z" and marker.encode() in command:
            found.add(int(stat.parent.name))
    return found
