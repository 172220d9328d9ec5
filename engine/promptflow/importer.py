"""`starter.py import promptflow DIR`: a flow folder read, mapped node by node, validated,
then written as a definition (one per variant of its nodes) and the actions module its
Python tools (and an evaluation flow's aggregation nodes) need."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from activities.promptflow_compat import NOT_IMPORTED, NotImportedParams, PythonTool, params_model
from engine.promptflow import interface
from engine.promptflow.aggregation import Aggregation, aggregation, line_flow
from engine.promptflow.dag import DAG_FILE, read_flow
from engine.promptflow.graph import dependencies, maybe_skipped, ordered
from engine.promptflow.names import Names, identifier
from engine.promptflow.nodes import Context, Mapped, NotMapped, map_node
from engine.promptflow.python_tools import module_name, module_text
from engine.promptflow.references import as_data
from engine.promptflow.run_spec import VariantChoice
from engine.promptflow.variants import node_variants, variant_flows
from engine.promptflow.writer import definition_text, run_command
from workflows.actions import ACTION_PARAMS
from workflows.errors import DefinitionError, Problem, UsageError
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
    variants: dict[VariantChoice, Path] = field(default_factory=dict)
    """Each variant other than the default: its own definition."""
    aggregate: str | None = None
    """An evaluation flow's aggregator (`aggregate:` in an evaluators file)."""
    outputs: list[str] = field(default_factory=list)
    """The definition's workflow outputs (the line values aggregation nodes read among them)."""
    files: dict[Path, str] = field(default_factory=dict)
    """What the import writes, checked before anything is written."""
    defaults: list[VariantChoice] = field(default_factory=list)
    """Each node's default variant: the definition itself."""
    sources: list[Path] = field(default_factory=list)
    """The flow's own files (flow.dag.yaml, each node's file): never written over."""

    def definition_of(self, choice: VariantChoice | None) -> Path:
        return self.variants.get(choice, self.definition) if choice else self.definition


def import_flow(request: ImportRequest, write: bool = True) -> Imported:
    """Read, map and validate in memory, then write (`write`); a DefinitionError (located)
    when the flow is bad, a `NotImported` when nodes cannot be mapped and --partial was not
    given: nothing is written then."""
    flow = read_flow(request.folder, request.shown)
    workflow_name = re.sub(r"[^A-Za-z0-9_-]", "_", flow.name)
    definition = request.output or request.folder.resolve().parent / f"{flow.name}.yaml"
    flows = variant_flows(flow)
    several = len({choice.node for choice, _ in flows if choice is not None}) > 1
    tools: dict[str, PythonTool] = {}
    notes: list[str] = []
    secrets: list[str] = []
    limits: list[Problem] = []
    built: list[
        tuple[VariantChoice | None, Path, dict[str, Any], dict[str, Any], dict[int, list[str]]]
    ] = []
    aggregated: Aggregation | None = None
    outputs: list[str] = []
    for choice, chosen in flows:
        lines = line_flow(chosen)
        reads = dependencies(lines)
        order = ordered(lines, reads)
        skippable = maybe_skipped(order, reads)
        names = Names.of(lines, frozenset(skippable))
        context = Context(lines, names, request.model_map, skippable, reads)
        variables = interface.variables(lines, names)
        steps, comments, found_notes, found_secrets, found_tools, found_limits = _steps(
            context, order, workflow_name
        )
        workflow: dict[str, Any] = {
            "name": workflow_name,
            "description": f"Imported from the Prompt flow {flow.name!r}"
            + (f" (its variant {choice})" if choice else "")
            + " by starter.py import promptflow.",
            "variables": variables,
            "steps": steps,
        }
        found_outputs = interface.outputs(lines, names)
        if choice is None:
            aggregated = aggregation(chosen, names, found_outputs, workflow_name)
            found_limits += aggregated.limits
            if not aggregated.nodes and not aggregated.limits:
                aggregated = None
        if aggregated is not None:
            found_outputs |= aggregated.outputs
        if found_outputs:
            workflow["outputs"] = found_outputs
        if choice is None:
            outputs = list(found_outputs)
        notes += [note for note in found_notes if note not in notes]
        secrets += [name for name in found_secrets if name not in secrets]
        limits += [limit for limit in found_limits if limit not in limits]
        tools |= {tool.action: tool for tool in found_tools}
        path = definition if choice is None else _variant_file(definition, choice, several)
        built.append((choice, path, variables, workflow, comments))
    if limits and not request.partial:
        raise NotImported(limits)
    module = module_name(flow.name) if tools or limits or aggregated else None
    module_file = definition.parent / f"{module}.py" if module else None
    files: dict[Path, str] = {}
    variants: dict[VariantChoice, Path] = {}
    for choice, path, _, workflow, comments in built:
        header = [
            f"Imported from {flow.shown} by `python starter.py import promptflow`"
            + (f", its variant {choice}." if choice else "."),
            *([f"Actions: {module_file.name} (ACTION_MODULES={module})."] if module_file else []),
            *([f"Secrets the worker needs: {', '.join(secrets)}."] if secrets else []),
            *([f"{len(limits)} node(s) NOT IMPORTED: see the comments."] if limits else []),
            *(
                [f"Aggregation nodes: `aggregate: {aggregated.name}` in an evaluators file."]
                if aggregated and choice is None
                else []
            ),
        ]
        text = definition_text(header, workflow, comments)
        load_definition(text, str(path), _actions(list(tools.values()), bool(limits)))
        files[path] = text
        if choice is not None:
            variants[choice] = path
    if module_file is not None:
        relative = os.path.relpath(flow.folder.resolve(), definition.parent.resolve())
        aggregator = (aggregated.name, aggregated.nodes) if aggregated else None
        files[module_file] = module_text(
            flow.name, relative, list(tools.values()), bool(limits), aggregator
        )
    needed = [
        (name, interface.example(spec))
        for name, spec in built[0][2].items()
        if interface.needed(spec)
    ]
    command = run_command(definition, module, definition.parent, needed)
    imported = Imported(
        definition, module_file, command, notes, secrets, limits, variants,
        aggregated.name if aggregated else None, outputs, files,
        [VariantChoice(node=v.node, variant=v.default) for v in node_variants(flow)],
        _sources(flow.folder, [chosen for _, chosen in flows]),
    )  # fmt: skip
    if write:
        write_files(files, imported.sources)
    return imported


def _sources(folder: Path, flows: list[Any]) -> list[Path]:
    paths = [folder / DAG_FILE]
    for chosen in flows:
        paths += [folder / n.source["path"] for n in chosen.nodes if _named_file(n.source)]
    return list(dict.fromkeys(paths))


def _named_file(source: dict[str, Any]) -> bool:
    return isinstance(source.get("path"), str) and bool(source["path"])


def write_files(files: dict[Path, str], sources: list[Path]) -> None:
    """Every file or none: each checked first (not a folder, not one of the flows' own
    files), written beside its place and moved there once all are written."""
    protected = {path.resolve() for path in sources}
    for path in files:
        if path.resolve() in protected:
            raise UsageError(f"{path} is a file the import reads: write the import elsewhere")
        if path.is_dir():
            raise UsageError(f"{path} is a folder: name the definition's file (-o FILE.yaml)")
    staged: list[tuple[Path, Path]] = []
    try:
        for path, text in files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_name(f".{path.name}.importing")
            staged.append((temporary, path))
            temporary.write_text(text, encoding="utf-8")
    except OSError as exc:
        for temporary, _ in staged:
            temporary.unlink(missing_ok=True)
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None
    for temporary, path in staged:
        temporary.replace(path)


def _variant_file(definition: Path, choice: VariantChoice, several: bool) -> Path:
    """`<flow>.<variant_id>.yaml`, or `<flow>.<node>.<variant_id>.yaml` when several nodes
    have variants."""
    middle = f"{choice.node}.{choice.variant}" if several else choice.variant
    return definition.with_name(f"{definition.stem}.{middle}{definition.suffix}")


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
