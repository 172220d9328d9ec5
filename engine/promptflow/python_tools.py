"""A flow's Python tools: the `@tool` function of a node's file, read (not imported) for its
parameters and the connection fields it uses, and the actions module that runs them
(`<flow>_tools.py`, written beside the definition; activities/promptflow_compat.py)."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

from activities.promptflow_compat import CONNECTION_FIELDS, AggregationNode, PythonTool


@dataclass(frozen=True)
class ToolFunction:
    """What the importer needs of a `@tool` function."""

    name: str
    line: int
    required: tuple[str, ...]
    optional: tuple[str, ...]
    connections: dict[str, str]
    """Parameter: connection class, for parameters annotated with a `...Connection` type."""
    fields: dict[str, tuple[str, ...]]
    """Connection parameter: the fields the function reads of it (may be empty)."""
    any_keyword: bool


class ToolProblem(ValueError):
    """The file has no usable `@tool` function; `line` is where to look."""

    def __init__(self, message: str, line: int = 1) -> None:
        super().__init__(message)
        self.line = line


def read_tool(text: str, wanted: str | None) -> ToolFunction:
    """The file's `@tool` function (the one named `wanted`, when the node names one)."""
    try:
        tree = ast.parse(text)
    except SyntaxError as exc:
        raise ToolProblem(f"Python syntax error: {exc.msg}", exc.lineno or 1) from None
    functions = [
        node
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and (node.name == wanted if wanted else any(_is_tool(d) for d in node.decorator_list))
    ]
    if not functions:
        what = f"no function {wanted}()" if wanted else "no @tool function"
        raise ToolProblem(what)
    if len(functions) > 1:
        names = ", ".join(f.name for f in functions)
        raise ToolProblem(f"several @tool functions ({names}): name one with source.function")
    return _signature(functions[0])


def _is_tool(decorator: ast.expr) -> bool:
    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
    return name == "tool"


def _signature(function: ast.FunctionDef | ast.AsyncFunctionDef) -> ToolFunction:
    args = function.args
    positional = [*args.posonlyargs, *args.args]
    with_default = len(args.defaults)
    required = [a.arg for a in positional[: len(positional) - with_default]]
    optional = [a.arg for a in positional[len(positional) - with_default :]]
    for arg, default in zip(args.kwonlyargs, args.kw_defaults, strict=True):
        (optional if default is not None else required).append(arg.arg)
    connections: dict[str, str] = {}
    for arg in [*positional, *args.kwonlyargs]:
        kind = _annotation_name(arg.annotation)
        if kind.endswith("Connection"):
            connections[arg.arg] = kind
    fields = {name: _fields_read(function, name) for name in connections}
    return ToolFunction(
        function.name,
        function.lineno,
        tuple(required),
        tuple(optional),
        connections,
        fields,
        args.kwarg is not None,
    )


def _annotation_name(annotation: ast.expr | None) -> str:
    if isinstance(annotation, ast.Name):
        return annotation.id
    if isinstance(annotation, ast.Attribute):
        return annotation.attr
    if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
        return annotation.value.rsplit(".", 1)[-1]
    return ""


def _fields_read(function: ast.AST, name: str) -> tuple[str, ...]:
    """`conn.x`, `conn["x"]`, `conn.secrets["x"]`, `conn.configs["x"]` and `conn.get("x")`."""
    found: list[str] = []

    def is_conn(node: ast.expr) -> bool:
        return isinstance(node, ast.Name) and node.id == name

    def is_store(node: ast.expr) -> bool:
        return is_conn(node) or (
            isinstance(node, ast.Attribute)
            and is_conn(node.value)
            and node.attr in ("secrets", "configs")
        )

    for node in ast.walk(function):
        if isinstance(node, ast.Attribute) and is_conn(node.value):
            if node.attr not in ("secrets", "configs", "get"):
                found.append(node.attr)
        elif isinstance(node, ast.Subscript) and is_store(node.value):
            if isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str):
                found.append(node.slice.value)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get"
            and is_store(node.func.value)
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.append(node.args[0].value)
    return tuple(dict.fromkeys(found))


def connection_fields(tool: ToolFunction, parameter: str) -> tuple[str, ...]:
    """The fields to fill from secrets: what the code reads, else the type's own fields."""
    return tool.fields.get(parameter) or CONNECTION_FIELDS.get(tool.connections[parameter], ())


def secret_name(connection: str, field: str) -> str:
    """`SECRET_<CONNECTION>_<FIELD>` on the worker is `secrets.<CONNECTION>_<FIELD>`."""
    return re.sub(r"\W", "_", f"{connection}_{field}").upper()


def module_name(flow: str) -> str:
    """The actions module's name: `<flow>_tools`, a Python identifier."""
    name = re.sub(r"\W", "_", flow).strip("_") or "flow"
    return f"{'_' + name if name[0].isdigit() else name}_tools"


def module_text(
    flow: str,
    flow_dir: str,
    tools: list[PythonTool],
    partial: bool,
    aggregator: tuple[str, list[AggregationNode]] | None = None,
) -> str:
    """The actions module: one `flow_tool` per function (and, under --partial, the action
    that steps not imported run; for an evaluation flow, its aggregator: (name, nodes))."""
    lines = [
        f'"""Actions for the Prompt flow {_in_docstring(flow)}, written by `starter.py import '
        "promptflow`:",
        "each runs the flow's own @tool function from the flow's folder (edit the flow, not",
        'this file). Load it with ACTION_MODULES (this folder on PYTHONPATH)."""',
        "",
        "from activities.promptflow_compat import "
        + ", ".join(
            [
                *(["AggregationNode"] if aggregator else []),
                *(["PythonTool"] if tools or aggregator else []),
                *(["flow_aggregator"] if aggregator else []),
                *(["flow_tool"] if tools else []),
                *(["not_imported"] if partial else []),
            ]
        ),
        "",
        f"FLOW_DIR = {flow_dir!r}",
        '"""The flow\'s folder, relative to this file."""',
        "",
    ]
    if partial:
        lines += ['__all__ = ["not_imported"]', ""]
    for tool in tools:
        variable = re.sub(r"\W", "_", tool.action)
        lines += [
            f"{variable} = flow_tool(",
            "    PythonTool(",
            f"        action={tool.action!r},",
            f"        file={tool.file!r},",
            f"        function={tool.function!r},",
            f"        required={tool.required!r},",
            f"        optional={tool.optional!r},",
            f"        connections={dict(tool.connections)!r},",
            f"        any_keyword={tool.any_keyword!r},",
            "    ),",
            "    __file__,",
            "    FLOW_DIR,",
            ")",
            "",
        ]
    if aggregator is not None:
        name, nodes = aggregator
        lines += [
            f"# The aggregation nodes, run once over every line: `aggregate: {name}` in an",
            "# evaluators file; their log_metric values are the evaluation's metrics.",
            f"{name}_aggregate = flow_aggregator(",
            f"    {name!r},",
            "    [",
            *(f"        {node!r}," for node in nodes),
            "    ],",
            "    __file__,",
            "    FLOW_DIR,",
            ")",
            "",
        ]
    return "\n".join(lines).rstrip("\n") + "\n"


def _in_docstring(text: str) -> str:
    """A name quoted for the module's docstring: no quote of it can end the docstring."""
    return repr(text).replace("\\", "\\\\").replace('"', '\\"')


def python_tool(action: str, file: Path | str, function: ToolFunction) -> PythonTool:
    """The action (`<flow>.<function>`) that runs one function of the flow's folder."""
    return PythonTool(
        action=action,
        file=str(file),
        function=function.name,
        required=function.required,
        optional=function.optional,
        connections=dict(function.connections),
        any_keyword=function.any_keyword,
    )
