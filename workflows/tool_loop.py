"""An llm_call with tools: the durable loop. Each model turn is an activity; each tool call
the model makes is an activity (an action, an MCP server's tool) or a child run (another
definition), run concurrently when the model asks for several at once. Their results go
back to the model until it answers or `max_turns` is reached. Every turn and every tool
call is in the run's history, so a worker that dies mid-loop repeats none that finished.

What the model sends is data: its arguments are never rendered as templates, and params
the definition fixes (rendered here, secrets as slots only the activity fills) win over
them; an argument the tool does not offer (an operator-level param such as `shared` or
`table` the definition did not offer, or one the action does not take) refuses the call.
A tool that fails answers the model with the failure (bounded), not the run, and so does
a call past the step's `max_tool_calls` or a child run past `max_depth`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, ChildWorkflowError

with workflow.unsafe.imports_passed_through():
    from workflows.activity_options import (
        HEARTBEAT_TIMEOUT,
        effect_key,
        failure_reason,
        retry_policy,
        timeout_of,
    )
    from workflows.contracts import (
        DESCRIBE_TOOLS,
        MCP_CALL,
        ActionInput,
        ActionResult,
        DescribeToolsInput,
        DescribeToolsResult,
        LlmCallInput,
        LlmCallResult,
        McpCallInput,
        RunResult,
        SecretSlot,
        ToolCall,
        ToolDef,
        ToolResult,
        Turn,
        Usage,
    )
    from workflows.definition import DEFAULT_MAX_TOOL_CALLS, Definition, LlmCallStep, RetrySpec
    from workflows.errors import FailureType, WorkflowError
    from workflows.scripts import ScriptPlayer
    from workflows.step_results import StepFailed, template_failure
    from workflows.templates import render_params

MAX_RESULT_CHARACTERS = 16_000
"""A tool's answer is cut here (with a marker) before it goes back to the model."""
MAX_CALLS_PER_TURN = 16
"""More tool calls in one turn are answered with an error instead of being run."""
TOOL_RETRY = RetrySpec(max_attempts=3)
"""A tool's own failures are the model's to handle: a few retries, then its answer."""
TOOL_CALLS_PATCH = "tool-calls-capped"
"""Runs from before max_tool_calls ran every call the model made (at most 16 a turn)."""
OFFERED_ARGUMENTS_PATCH = "tool-arguments-offered"
"""Runs from before ran an action tool whatever arguments the model sent."""

CallModels = Callable[[LlmCallStep, LlmCallInput, str], Awaitable[LlmCallResult]]
ChildRun = Callable[[str, str, dict[str, Any], str, int | None], Awaitable[RunResult]]


class LoopFailed(Exception):
    """The model was still calling tools after `max_turns` turns."""

    def __init__(self, message: str, attempts: int) -> None:
        super().__init__(message)
        self.attempts = attempts


async def describe_tools(
    step: LlmCallStep, children: dict[str, Definition], action_task_queue: str | None
) -> list[ToolDef]:
    """What the model is offered: child definitions described here, actions and MCP servers
    by the worker (which knows custom actions' params and asks the MCP servers)."""
    tools: list[ToolDef] = []
    remote = [tool.model_dump(exclude_none=True) for tool in step.tools if tool.workflow is None]
    if remote:
        described: DescribeToolsResult = await workflow.execute_activity(
            DESCRIBE_TOOLS,
            DescribeToolsInput(step_id=step.id, tools=remote),
            result_type=DescribeToolsResult,
            start_to_close_timeout=timeout_of("60s"),
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
            retry_policy=retry_policy(TOOL_RETRY),
            task_queue=action_task_queue,
            summary=f"{step.id}: describe tools",
        )
        tools += described.tools
    for tool in step.tools:
        if tool.workflow is not None:
            tools.append(workflow_tool(tool.workflow, children[tool.workflow], tool.description))
    names = [tool.name for tool in tools]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise ApplicationError(
            f"step '{step.id}': more than one tool is named {', '.join(map(repr, twice))}",
            type=FailureType.DEFINITION,
            non_retryable=True,
        )
    return tools


def workflow_tool(file: str, child: Definition, description: str | None) -> ToolDef:
    """A definition as a tool: its variables are the arguments."""
    spec = child.workflow
    properties: dict[str, Any] = {}
    for name, variable in spec.variables.items():
        schema: dict[str, Any] = {"type": variable.type} if variable.type else {}
        if variable.description:
            schema["description"] = variable.description
        properties[name] = schema
    required = [
        name
        for name, variable in spec.variables.items()
        if variable.required or variable.default is None
    ]
    return ToolDef(
        name=spec.name,
        description=description or spec.description or f"Runs the {spec.name} workflow.",
        parameters={"type": "object", "properties": properties, "required": required},
        kind="workflow",
        target=file,
    )


class ToolLoop:
    """One llm_call's loop, from its first turn to the model's answer."""

    def __init__(
        self,
        step: LlmCallStep,
        key: str,
        context: dict[str, Any],
        call_models: CallModels,
        child_run: ChildRun,
        action_task_queue: str | None,
        script: ScriptPlayer | None = None,
    ) -> None:
        self.step = step
        self.script = script
        self.key = key
        self.context = context
        self.call_models = call_models
        self.child_run = child_run
        self.action_task_queue = action_task_queue
        self.calls = 0
        """Tool calls the model has made in this loop, every turn and re-ask together."""
        self.max_calls = step.max_tool_calls or DEFAULT_MAX_TOOL_CALLS

    async def answer(self, call: LlmCallInput) -> tuple[LlmCallResult, LlmCallInput]:
        """The model's answer (usage and attempts of every turn added up), and the call as
        it then stands (its turns), for a re-ask to go on from."""
        usage, attempts = Usage(), 0
        by_name = {tool.name: tool for tool in call.tools}
        for turn in range(1, self.step.max_turns + 1):
            reply = await self.call_models(self.step, call, self.key)
            usage += reply.usage
            attempts += reply.attempt
            if not reply.tool_calls:
                return reply.model_copy(update={"usage": usage, "attempt": attempts}), call
            if turn == self.step.max_turns:
                break
            made, self.calls = self.calls, self.calls + len(reply.tool_calls)
            results = await asyncio.gather(
                *(
                    self._run(turn, index, made + index, called, by_name)
                    for index, called in enumerate(reply.tool_calls, 1)
                )
            )
            done = Turn(text=reply.text, calls=reply.tool_calls, results=list(results))
            call = call.model_copy(update={"turns": [*call.turns, done]})
        raise LoopFailed(
            f"step '{self.step.id}': the model was still calling tools after "
            f"{self.step.max_turns} turn(s) (max_turns)",
            attempts,
        )

    async def _run(
        self, turn: int, index: int, ordinal: int, called: ToolCall, by_name: dict[str, ToolDef]
    ) -> ToolResult:
        """One tool call; `ordinal` counts it among all the calls of this loop."""
        tool = by_name.get(called.name)
        where = f"{self.key}/turn{turn}.{index}"
        try:
            if index > MAX_CALLS_PER_TURN:
                raise _Refused(f"more than {MAX_CALLS_PER_TURN} tool calls in one turn")
            if ordinal > self.max_calls and workflow.patched(TOOL_CALLS_PATCH):
                raise _Refused(
                    f"no more tool calls: this step allows {self.max_calls} "
                    "(max_tool_calls); answer with what you have"
                )
            if tool is None:
                raise _Refused(f"no tool named {called.name!r}: use one of {', '.join(by_name)}")
            if tool.kind == "action":
                content = await self._action(tool, called, where)
            elif tool.kind == "workflow":
                result = await self.child_run(
                    self.step.id, tool.target, called.arguments, where, self.step.max_depth
                )
                content = json.dumps(result.outputs, default=str)
            else:
                content = await self._mcp(tool, called, where)
            is_error = False
        except (ActivityError, ChildWorkflowError) as exc:
            content, is_error = f"the tool failed: {failure_reason(exc)}", True
        except (_Refused, StepFailed) as exc:  # StepFailed: a child run past max_depth
            content, is_error = str(exc), True
        return ToolResult(
            id=called.id, name=called.name, content=_bounded(content), is_error=is_error
        )

    async def _action(self, tool: ToolDef, called: ToolCall, where: str) -> str:
        unoffered = _unoffered(tool, called.arguments)
        if unoffered and workflow.patched(OFFERED_ARGUMENTS_PATCH):
            offered = ", ".join(tool.parameters.get("properties", {})) or "none"
            raise _Refused(
                f"{tool.name} does not let the model set {', '.join(map(repr, unoffered))} "
                f"(the arguments it takes: {offered})"
            )
        try:
            fixed, slots = render_params(tool.fixed, self.context)
        except WorkflowError as exc:
            raise template_failure(f"{self.step.id}.tools.{tool.name}.params", exc) from None
        idempotency_key, first_run_id = effect_key(where)
        result: ActionResult = await workflow.execute_activity(
            tool.target,
            ActionInput(
                step_id=self.step.id,
                action=tool.target,
                params={**called.arguments, **fixed},  # what the definition fixes wins
                secrets=[SecretSlot(path=list(path), parts=parts) for path, parts in slots],
                idempotency_key=idempotency_key,
                first_run_id=first_run_id,
                scripted=self.script.action(self.step.id, self.key) if self.script else None,
            ),
            result_type=ActionResult,
            start_to_close_timeout=timeout_of(self.step.timeout),
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
            retry_policy=retry_policy(TOOL_RETRY),
            task_queue=self.action_task_queue,
            summary=f"{where}: tool {tool.name}",
        )
        value = result.value
        return value if isinstance(value, str) else json.dumps(value, default=str)

    async def _mcp(self, tool: ToolDef, called: ToolCall, where: str) -> str:
        answer: ToolResult = await workflow.execute_activity(
            MCP_CALL,
            McpCallInput(
                step_id=self.step.id,
                server=tool.target,
                tool=tool.name,
                arguments=called.arguments,
            ),
            result_type=ToolResult,
            start_to_close_timeout=timeout_of(self.step.timeout),
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
            retry_policy=retry_policy(TOOL_RETRY),
            task_queue=self.action_task_queue,
            summary=f"{where}: tool {tool.target}.{tool.name}",
        )
        if answer.is_error:
            raise _Refused(f"the tool answered with an error: {answer.content}")
        return answer.content


def _unoffered(tool: ToolDef, arguments: dict[str, Any]) -> list[str]:
    """The arguments a call sets that the tool does not offer: operator-level params the
    definition did not offer, and, unless the action takes params it does not declare, any
    that are not in its schema. Params the definition fixes are overridden, not refused."""
    properties = tool.parameters.get("properties", {})
    extra = tool.parameters.get("additionalProperties")
    takes_any = extra is True or isinstance(extra, dict)
    return [
        name
        for name in arguments
        if name not in tool.fixed
        and (name in tool.withheld or (name not in properties and not takes_any))
    ]


class _Refused(Exception):
    """A tool call answered with an error without running anything."""


def _bounded(text: str) -> str:
    if len(text) <= MAX_RESULT_CHARACTERS:
        return text
    return text[:MAX_RESULT_CHARACTERS] + f"\n[cut: the tool's answer was {len(text)} characters]"
