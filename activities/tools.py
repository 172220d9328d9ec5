"""The worker's side of an llm_call's tools: what each action and MCP server offers the model
(`describe_tools`), and one call of an MCP server's tool (`mcp_call`). Action tools run as
the actions themselves (activities/actions.py), with the same guards; child definitions
are child runs (workflows/tool_loop.py)."""

from __future__ import annotations

import copy
import inspect
from collections.abc import Mapping
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.heartbeat import heartbeating
from activities.mcp_servers import McpServer, McpUnavailable, call_tool, list_tools
from activities.registry import ActionSpec
from workflows.actions import operator_params
from workflows.contracts import (
    DESCRIBE_TOOLS,
    MCP_CALL,
    DescribeToolsInput,
    DescribeToolsResult,
    McpCallInput,
    ToolDef,
    ToolResult,
)
from workflows.errors import FailureType


class ToolActivities:
    def __init__(self, actions: Mapping[str, ActionSpec], servers: Mapping[str, McpServer]):
        self._actions = actions
        self._servers = servers

    @activity.defn(name=DESCRIBE_TOOLS)
    async def describe_tools(self, request: DescribeToolsInput) -> DescribeToolsResult:
        """Each action as a tool (its params' JSON Schema, less the params the definition
        fixes and the operator-level ones it does not offer), and every tool of each MCP
        server named."""
        tools: list[ToolDef] = []
        for entry in request.tools:
            if "action" in entry:
                tools.append(self._action_tool(request.step_id, entry))
            else:
                server = self._server(request.step_id, entry["mcp"])
                try:
                    tools += await heartbeating(list_tools(server))
                except McpUnavailable as exc:
                    raise ApplicationError(str(exc), type=FailureType.MCP_UNAVAILABLE) from None
        return DescribeToolsResult(tools=tools)

    @activity.defn(name=MCP_CALL)
    async def mcp_call(self, request: McpCallInput) -> ToolResult:
        """One call of an MCP server's tool; the server's error answer is the result (the
        model reads it), a server that cannot be reached is retried."""
        server = self._server(request.step_id, request.server)
        try:
            text, is_error = await heartbeating(call_tool(server, request.tool, request.arguments))
        except McpUnavailable as exc:
            raise ApplicationError(str(exc), type=FailureType.MCP_UNAVAILABLE) from None
        return ToolResult(id="", name=request.tool, content=text, is_error=is_error)

    def _action_tool(self, step_id: str, entry: dict[str, Any]) -> ToolDef:
        name = entry["action"]
        spec = self._actions.get(name)
        if spec is None:
            raise ApplicationError(
                f"step '{step_id}': action {name!r} is not registered on this worker "
                f"(actions: {', '.join(sorted(self._actions))})",
                type=FailureType.DEFINITION,
                non_retryable=True,
            )
        fixed: dict[str, Any] = entry.get("params") or {}
        withheld = sorted(operator_params(spec.params) - set(entry.get("offer") or ()) - set(fixed))
        schema = copy.deepcopy(spec.params.model_json_schema(by_alias=True))
        schema.pop("title", None)
        for param in [*fixed, *withheld]:
            schema.get("properties", {}).pop(param, None)
        hidden = set(fixed) | set(withheld)
        schema["required"] = [p for p in schema.get("required", []) if p not in hidden]
        return ToolDef(
            name=name,
            description=entry.get("description") or _described(spec),
            parameters=schema,
            kind="action",
            target=name,
            fixed=fixed,
            withheld=withheld,
        )

    def _server(self, step_id: str, name: str) -> McpServer:
        server = self._servers.get(name)
        if server is None:
            known = ", ".join(sorted(self._servers)) or "none is configured"
            raise ApplicationError(
                f"step '{step_id}': no MCP server {name!r} on this worker (MCP_SERVERS: {known})",
                type=FailureType.DEFINITION,
                non_retryable=True,
            )
        return server


def _described(spec: ActionSpec) -> str:
    """The action's own words: its function's docstring, else its params model's."""
    for source in (spec.run, spec.params):
        text = inspect.getdoc(source)
        if text and not text.startswith(("Create a new model", "Usage docs")):
            return " ".join(text.split())[:1000]
    return f"the {spec.name} action"
