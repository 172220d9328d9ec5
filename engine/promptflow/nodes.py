"""Each Prompt flow node as one of our steps: `llm` an llm_call, `prompt` a `set` step that
renders the template, `python` an action that runs the flow's own `@tool` function. A node
the importer cannot map raises `NotMapped` (an honest limit); bad input a DefinitionError.

`llm_step` maps one llm node from its settings alone, so a variant (a node-shaped mapping
of settings) maps through it too."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from activities.definitions import confined, read_text
from activities.promptflow_compat import PythonTool
from engine.promptflow.dag import Flow, Node
from engine.promptflow.graph import checked_reference
from engine.promptflow.names import Names
from engine.promptflow.prompts import (
    LOOP_FIELDS,
    Loop,
    PromptProblem,
    bound,
    loop_fields,
    read_chat,
    rebound,
    unbound,
)
from engine.promptflow.python_tools import (
    ToolFunction,
    ToolProblem,
    connection_fields,
    python_tool,
    read_tool,
    secret_name,
)
from engine.promptflow.references import as_data, literal
from workflows.errors import DefinitionError, Problem

DEFAULT_MODEL = "gpt-4o-mini"
"""The model of an llm node that --model-map does not name and whose own model we cannot
route (an Azure deployment name, say)."""
LLM_TOOL = "promptflow.tools.llm.llm"
BOM = "\ufeff"
CARRIED = {"deployment_name", "model", "temperature", "max_tokens", "response_format"}
NOT_YET = {"tools", "functions", "function_call", "tool_choice"}
"""llm settings that change what the call does; a node with one is not imported yet."""
DROPPED = {
    "top_p", "stop", "presence_penalty", "frequency_penalty", "logit_bias", "user", "seed",
    "n", "stream", "detail", "suffix", "echo", "best_of", "logprobs", "top_logprobs",
}  # fmt: skip
"""llm settings our llm_call has no field for: dropped, with a note."""


class NotMapped(Exception):
    """A node the importer cannot map (yet): the located reason."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


@dataclass
class Mapped:
    """A node's step, with what the user should know and what the worker needs."""

    step: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    tool: PythonTool | None = None
    secrets: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Context:
    flow: Flow
    names: Names
    model_map: dict[str, str]
    skippable: set[str]
    reads: dict[str, set[str]]


def map_node(context: Context, node: Node, action: str) -> Mapped:
    """The step for `node` (`action`: the name its Python tool's action gets)."""
    flow = context.flow
    if node.data.get("aggregation"):
        raise NotMapped(flow.problem((*node.path, "aggregation"), _not_yet("aggregation nodes")))
    if "use_variants" in node.data or "variant_id" in node.data:
        raise NotMapped(flow.problem(node.path, _not_yet("node variants")))
    kind = node.type
    source_type = node.source.get("type", "code")
    tool_name = str(node.source.get("tool", ""))
    if source_type not in ("code", "package_with_prompt") or (
        source_type == "package_with_prompt" and tool_name != LLM_TOOL
    ):
        what = f"tool {tool_name!r} from a package" if tool_name else f"a {source_type} source"
        raise NotMapped(flow.problem((*node.path, "source"), f"{what} is not imported"))
    if kind in ("llm", "custom_llm"):
        mapped = llm_step(context, node)
    elif kind == "prompt":
        mapped = prompt_step(context, node)
    elif kind == "python":
        mapped = python_step(context, node, action)
    else:
        raise NotMapped(flow.problem((*node.path, "type"), f"node type {kind!r} is not imported"))
    condition = when(context, node)
    if condition is not None:
        mapped.step = {**_head(mapped.step), "when": condition, **_tail(mapped.step)}
    return mapped


def _not_yet(what: str) -> str:
    return f"{what} are not imported yet"


def _head(step: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in step.items() if k in ("id", "type")}


def _tail(step: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in step.items() if k not in ("id", "type")}


def when(context: Context, node: Node) -> str | None:
    """`activate: {when, is}` as our `when`; a node without one whose every node input may be
    bypassed is bypassed with them (Prompt flow's rule)."""
    activate = node.data.get("activate")
    if "activate" in node.data and not isinstance(activate, dict):
        where = (*node.path, "activate")
        message = "activate is a mapping: {when: ${...}, is: VALUE}"
        raise DefinitionError([context.flow.problem(where, message)])
    if isinstance(activate, dict):
        where = (*node.path, "activate", "when")
        reference = checked_reference(context.flow, where, activate.get("when"))
        if reference is None:
            raise DefinitionError([context.flow.problem(where, "activate.when is a ${...}")])
        if "is" not in activate:
            raise DefinitionError([context.flow.problem((*node.path, "activate"), "needs 'is'")])
        return f"{{{{ {context.names.expression(reference)} == {literal(activate['is'])} }}}}"
    reads = sorted(context.reads[node.name])
    if reads and set(reads) <= context.skippable:
        ran = " or ".join(f"steps.{context.names.steps[n]}.status != 'skipped'" for n in reads)
        return f"{{{{ {ran} }}}}"
    return None


def source_file(flow: Flow, node: Node) -> tuple[Path, str, str]:
    """The node's source file: its path, its name in messages and its text (without the byte
    order mark some editors put first). Only a file inside the flow's folder: the actions
    module runs it from there, and a flow moved or shared carries its folder, nothing else."""
    path = node.source.get("path")
    where = (*node.path, "source", "path")
    if not isinstance(path, str) or not path:
        raise DefinitionError([flow.problem((*node.path, "source"), "needs source.path")])
    file = flow.folder / path
    if not confined(file, flow.folder):
        message = f"{path!r} is outside the flow's folder: copy it in (a node's file must be in it)"
        raise DefinitionError([flow.problem(where, message)])
    if not file.is_file():
        raise DefinitionError([flow.problem(where, f"no file {path!r} in the flow's folder")])
    shown = flow.shown_file(path)
    return file, shown, read_text(file, shown, "a flow's file").removeprefix(BOM)


def _value(context: Context, node: Node, key: str) -> str:
    """A node input as a Jinja expression (a reference's value, or the literal)."""
    where = (*node.path, "inputs", key)
    value = node.inputs[key]
    reference = checked_reference(context.flow, where, value)
    if reference is None:
        return literal(value)
    return context.names.expression(reference)


def _bindings(context: Context, node: Node, keys: list[str]) -> dict[str, str]:
    return {key: _value(context, node, key) for key in keys}


def _unbound(
    node: Node,
    shown: str,
    line: int,
    template: str,
    bindings: dict[str, str],
    local: frozenset[str] = frozenset(),
) -> None:
    """A name the template reads that the node does not give, or a Jinja syntax error: one
    located problem (`line`: where the template starts in its file)."""
    try:
        names = unbound(template, bindings, local)
    except jinja2.TemplateSyntaxError as exc:
        at = line + (exc.lineno or 1) - 1
        raise DefinitionError(
            [Problem(shown, at, 1, f"Jinja syntax error: {exc.message}")]
        ) from None
    if names:
        raise DefinitionError(
            [Problem(shown, line, 1, f"node '{node.name}' gives no input '{names[0]}'")]
        )


def prompt_step(context: Context, node: Node) -> Mapped:
    """A `set` step whose one value is the rendered template."""
    _, shown, text = source_file(context.flow, node)
    bindings = _bindings(context, node, list(node.inputs))
    _unbound(node, shown, 1, text, bindings)
    output = context.names.outputs[node.name]
    step = {"id": context.names.steps[node.name], "type": "set"}
    return Mapped({**step, "values": {output: bound(text, bindings)}})


def llm_step(context: Context, node: Node) -> Mapped:
    """An llm_call from one llm node's settings (its inputs, connection, api and prompt)."""
    flow = context.flow
    inputs = node.inputs
    notes: list[str] = []
    for key in sorted(NOT_YET & set(inputs)):
        raise NotMapped(flow.problem((*node.path, "inputs", key), _not_yet(f"llm '{key}'")))
    _, shown, text = source_file(context.flow, node)
    step: dict[str, Any] = {"id": context.names.steps[node.name], "type": "llm_call"}
    model, note = model_of(node, context.model_map)
    step["model"] = model
    notes += [note] if note else []
    if str(node.data.get("api", "chat")) != "chat":
        notes.append(f"node '{node.name}': api {node.data.get('api')!r} is sent as a chat call")
    settings = {key: inputs[key] for key in ("temperature", "max_tokens") if key in inputs}
    for key, value in settings.items():
        number = _number(value, float if key == "temperature" else int)
        if number is None:
            notes.append(f"node '{node.name}': {key} {value!r} is not a number: not carried")
        else:
            step[key] = number
    dropped = sorted(DROPPED & set(inputs))
    if dropped:
        notes.append(f"node '{node.name}': {', '.join(dropped)} not carried (no such setting)")
    keys = [key for key in inputs if key not in CARRIED | DROPPED]
    bindings = _bindings(context, node, keys)
    try:
        chat = read_chat(text)
    except PromptProblem as exc:
        raise NotMapped(Problem(shown, exc.line, 1, str(exc))) from None
    if chat.system is not None:
        _unbound(node, shown, chat.system.line, chat.system.content, bindings)
        step["system"] = bound(chat.system.content, bindings)
    entries = chat.entries
    if len(entries) == 1 and not isinstance(entries[0], Loop) and entries[0].role == "user":
        _unbound(node, shown, entries[0].line, entries[0].content, bindings)
        step["prompt"] = bound(entries[0].content, bindings)
    else:
        step["messages"] = [_entry(context, node, shown, e, bindings) for e in entries]
    output: dict[str, Any] = {"name": context.names.outputs[node.name]}
    if _json_object(inputs.get("response_format")):
        output["schema"] = {"type": "object"}
        notes.append(
            f"node '{node.name}': response_format json_object: the reply is parsed, so the "
            f'step\'s output is an object (asked for as {{"{output["name"]}": {{...}}}})'
        )
    step["outputs"] = [output]
    return Mapped(step, notes)


def _entry(
    context: Context, node: Node, shown: str, entry: Any, bindings: dict[str, str]
) -> dict[str, Any]:
    if not isinstance(entry, Loop):
        _unbound(node, shown, entry.line, entry.content, bindings)
        return {"role": entry.role, "content": bound(entry.content, bindings)}
    _unbound(node, shown, entry.line, "{{ " + entry.iterable + " }}", bindings)
    local = frozenset({entry.name, "loop"})
    messages = []
    for message in entry.messages:
        _unbound(node, shown, message.line, message.content, bindings, local)
        other = sorted(loop_fields(message.content) - set(LOOP_FIELDS))
        if other:
            raise NotMapped(
                Problem(
                    shown, message.line, 1,
                    f"loop.{other[0]} in a loop of messages is not imported: "
                    f"{', '.join('loop.' + name for name in LOOP_FIELDS)} are",
                )
            )  # fmt: skip
        content = bound(message.content, {k: v for k, v in bindings.items() if k != entry.name})
        messages.append({"role": message.role, "content": content})
    iterable = rebound(entry.iterable, bindings)
    if "|" in iterable:  # a filter (reverse, map, select) gives an iterator: make it a list
        iterable = f"({iterable}) | list"
    each = "{{ " + iterable + " }}"
    return {"each": each, "as": entry.name, "messages": messages}


def _number(value: Any, kind: type[float] | type[int]) -> float | int | None:
    if isinstance(value, bool):
        return None
    try:
        return kind(value)
    except (TypeError, ValueError):
        return None


def _json_object(value: Any) -> bool:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return False
    return isinstance(value, dict) and value.get("type") == "json_object"


def model_of(node: Node, model_map: dict[str, str]) -> tuple[str, str | None]:
    """The node's model: --model-map by deployment_name, model or connection; else its own
    `model` or `deployment_name` when we route that name (gpt-4o, claude-...); else the
    default. A note says what was chosen unless the flow named the model itself."""
    named = [
        str(value)
        for value in (
            node.inputs.get("deployment_name"),
            node.inputs.get("model"),
            node.data.get("connection"),
        )
        if isinstance(value, str) and value
    ]
    for name in named:
        if name in model_map:
            return model_map[name], None
    for key in ("model", "deployment_name"):
        own = node.inputs.get(key)
        if isinstance(own, str) and _routes(own):
            if key == "model":
                return own, None
            return own, f"node '{node.name}': deployment {own!r} runs as the model {own!r}" + (
                f" (--model-map {own}=MODEL to change it)"
            )
    what = f"deployment {named[0]!r}" if named else "no model"
    hint = f" (--model-map {named[0]}=MODEL)" if named else ""
    return DEFAULT_MODEL, f"node '{node.name}': {what} runs on {DEFAULT_MODEL}, the default{hint}"


def _routes(name: str) -> bool:
    """Whether a name is one of our model names (a provider's prefix), not a deployment's."""
    from workflows.routing import route

    try:
        route(name)
    except ValueError:
        return False
    return True


def checked_tool(flow: Flow, node: Node) -> ToolFunction:
    """The node's `@tool` function, read from its file; its inputs checked against the
    function's parameters, every problem located."""
    _, shown, text = source_file(flow, node)
    wanted = node.source.get("function")
    try:
        function = read_tool(text, wanted if isinstance(wanted, str) else None)
    except ToolProblem as exc:
        raise DefinitionError([Problem(shown, exc.line, 1, str(exc))]) from None
    known = set(function.required) | set(function.optional)
    problems = [
        flow.problem(
            (*node.path, "inputs", key), f"{function.name}() has no parameter '{key}'", at_key=True
        )
        for key in node.inputs
        if key not in known and not function.any_keyword
    ]
    problems += [
        flow.problem((*node.path, "inputs"), f"{function.name}() needs input '{key}'")
        for key in function.required
        if key not in node.inputs
    ]
    if problems:
        raise DefinitionError(problems)
    return function


def python_step(context: Context, node: Node, action: str) -> Mapped:
    """An action running the node's `@tool` function with the node's inputs."""
    flow = context.flow
    function = checked_tool(flow, node)
    notes: list[str] = []
    params: dict[str, Any] = {}
    secrets: list[str] = []
    for key, value in node.inputs.items():
        if key in function.connections:
            if not isinstance(value, str) or value.startswith("${"):
                where = (*node.path, "inputs", key)
                raise DefinitionError(
                    [flow.problem(where, "a connection input names a connection")]
                )
            fields = connection_fields(function, key)
            if not fields:
                notes.append(
                    f"node '{node.name}': {function.name}() reads no field of the connection "
                    f"{value!r} itself, so it gets none: the import fills the fields the @tool "
                    f"function reads ({key}.NAME, {key}.secrets['NAME'])"
                )
            names = {name: secret_name(value, name) for name in fields}
            params[key] = {name: f"{{{{ secrets.{secret} }}}}" for name, secret in names.items()}
            secrets += names.values()
            continue
        reference = checked_reference(flow, (*node.path, "inputs", key), value)
        params[key] = (
            as_data(value)
            if reference is None
            else "{{ " + context.names.expression(reference) + " }}"
        )
    relative = Path(node.source["path"])
    tool = python_tool(action, relative.as_posix(), function)
    step = {
        "id": context.names.steps[node.name],
        "type": "action",
        "action": action,
        "params": params,
        "outputs": [context.names.outputs[node.name]],
    }
    return Mapped(step, notes, tool=tool, secrets=secrets)
