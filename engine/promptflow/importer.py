"""`starter.py import promptflow DIR`: a flow folder read, mapped node by node, written as a
definition (and the actions module its Python tools need), and validated."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from activities.promptflow_compat import NOT_IMPORTED, NotImportedParams, PythonTool, params_model
from engine.promptflow import interface
from engine.promptflow.dag import read_flow
from engine.promptflow.graph import dependencies, maybe_skipped, ordered
from engine.promptflow.names import Names, identifier
from engine.promptflow.nodes import Context, Mapped, NotMapped, map_node
from engine.promptflow.python_tools import module_name, module_text
from engine.promptflow.references import as_data
from engine.promptflow.writer import definition_text, run_command
from workflows.actions import ACTION_PARAMS
from workflows.errors import DefinitionError, Problem
from workflows.validation import load_definition


class NotImported(DefinitionError):
    """Nodes the importer cannot map, and nothing written (without --partial)."""

    def __str__(self) -> str:
        return (
            super().__str__()
            + f"\nnothing written: {len(self.problems)} node(s) cannot be imported; "
            "--partial writes the rest, with these steps failing when they run"
        )


@dataclass(frozen=True)
class ImportRequest:
    folder: Path
    shown: str
    """The folder as the user named it, for messages."""
    output: Path | None = None
    model_map: dict[str, str] = field(default_factory=dict)
    partial: bool = False


@dataclass
class Imported:
    definition: Path
    module: Path | None
    command: str
    notes: list[str]
    secrets: list[str]
    limits: list[Problem]


def import_flow(request: ImportRequest) -> Imported:
    """Read, map, write and validate; a DefinitionError (located) when the flow is bad, a
    `NotImported` when nodes cannot be mapped and --partial was not given."""
    flow = read_flow(request.folder, request.shown)
    reads = dependencies(flow)
    order = ordered(flow, reads)
    names = Names.of(flow)
    context = Context(flow, names, request.model_map, maybe_skipped(order, reads), reads)
    workflow_name = re.sub(r"[^A-Za-z0-9_-]", "_", flow.name)
    variables = interface.variables(flow, names)
    steps, comments, notes, secrets, tools, limits = _steps(context, order, workflow_name)
    if limits and not request.partial:
        raise NotImported(limits)
    workflow: dict[str, Any] = {
        "name": workflow_name,
        "description": f"Imported from the Prompt flow {flow.name!r} by starter.py import "
        "promptflow.",
        "variables": variables,
        "steps": steps,
    }
    found_outputs = interface.outputs(flow, names)
    if found_outputs:
        workflow["outputs"] = found_outputs
    definition = request.output or request.folder.resolve().parent / f"{flow.name}.yaml"
    module = module_name(flow.name) if tools or limits else None
    module_file = definition.parent / f"{module}.py" if module else None
    header = [
        f"Imported from {flow.shown} by `python starter.py import promptflow`.",
        *([f"Actions: {module_file.name} (ACTION_MODULES={module})."] if module_file else []),
        *([f"Secrets the worker needs: {', '.join(secrets)}."] if secrets else []),
        *([f"{len(limits)} step(s) NOT IMPORTED: they fail when they run."] if limits else []),
    ]
    text = definition_text(header, workflow, comments)
    definition.parent.mkdir(parents=True, exist_ok=True)
    if module_file is not None:
        relative = os.path.relpath(flow.folder.resolve(), definition.parent.resolve())
        module_file.write_text(module_text(flow.name, relative, tools, bool(limits)))
    definition.write_text(text, encoding="utf-8")
    load_definition(text, str(definition), _actions(tools, bool(limits)))
    needed = [
        (name, interface.example(spec))
        for name, spec in variables.items()
        if interface.needed(spec)
    ]
    command = run_command(definition, module, definition.parent, needed)
    return Imported(definition, module_file, command, notes, secrets, limits)


def _steps(
    context: Context, order: list[Any], workflow_name: str
) -> tuple[
    list[dict[str, Any]], dict[int, list[str]], list[str], list[str], list[PythonTool],
    list[Problem],
]:  # fmt: skip
    steps: list[dict[str, Any]] = []
    comments: dict[int, list[str]] = {}
    notes: list[str] = []
    secrets: list[str] = []
    tools: list[PythonTool] = []
    limits: list[Problem] = []
    problems: list[Problem] = []
    actions: set[str] = set()
    for node in order:
        action = f"{workflow_name}.{identifier(str(node.source.get('function') or node.name))}"
        while action in actions:
            action += "_"
        try:
            mapped = map_node(context, node, action)
        except NotMapped as limit:
            limits.append(limit.problem)
            comments[len(steps)] = [f"NOT IMPORTED: {limit.problem}"]
            mapped = _placeholder(context, node, limit.problem.message)
        except DefinitionError as exc:
            problems += exc.problems
            continue
        mapped.step["depends_on"] = []
        steps.append(mapped.step)
        notes += mapped.notes
        secrets += [name for name in mapped.secrets if name not in secrets]
        if mapped.tool is not None:
            tools.append(mapped.tool)
            actions.add(mapped.tool.action)
    if problems:
        raise DefinitionError(problems)
    return steps, comments, notes, secrets, tools, limits


def _placeholder(context: Context, node: Any, reason: str) -> Mapped:
    """A step that fails when it runs, saying why (--partial): nothing silently dropped."""
    step = {
        "id": context.names.steps[node.name],
        "type": "action",
        "action": NOT_IMPORTED,
        "params": as_data({"node": node.name, "reason": reason}),
        "outputs": [context.names.outputs[node.name]],
    }
    return Mapped(step)


def _actions(tools: list[PythonTool], partial: bool) -> dict[str, type[BaseModel]]:
    """What the written definition's actions take: built-ins, the tools, the placeholder."""
    found: dict[str, type[BaseModel]] = {**ACTION_PARAMS}
    found |= {tool.action: params_model(tool) for tool in tools}
    if partial:
        found[NOT_IMPORTED] = NotImportedParams
    return found
