"""An evaluation flow's `aggregation: true` nodes. Prompt flow runs the other (line) nodes once
per line, then each aggregation node once, every input that reads a line value given as the
list of that value over all lines. Here the line nodes are the definition a `workflow`
evaluator runs per row; the line values the aggregation nodes read become its outputs; and
the aggregation nodes run in the evaluator's aggregator (`aggregate:`,
activities/promptflow_compat.flow_aggregator), whose `log_metric` values are the metrics."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from activities.promptflow_compat import AggregationNode
from engine.promptflow.dag import Flow, Node
from engine.promptflow.graph import checked_reference, ordered
from engine.promptflow.names import Names, identifier
from engine.promptflow.nodes import NotMapped, checked_tool
from engine.promptflow.python_tools import python_tool
from engine.promptflow.references import parse
from workflows.errors import DefinitionError, Problem


@dataclass
class Aggregation:
    name: str
    """The aggregator's name: the flow's, as an identifier."""
    nodes: list[AggregationNode] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)
    """The line values the nodes read, as the line definition's extra workflow outputs."""
    limits: list[Problem] = field(default_factory=list)


def is_aggregation(node: Node) -> bool:
    return bool(node.data.get("aggregation"))


def line_flow(flow: Flow) -> Flow:
    """The flow without its aggregation nodes; a line node or an output that reads one is a
    located problem (Prompt flow refuses them too: they run once, after every line)."""
    later = {node.name for node in flow.nodes if is_aggregation(node)}
    if not later:
        return flow
    problems = []
    readers = [
        ((*node.path, "inputs", key), value)
        for node in flow.nodes
        if not is_aggregation(node)
        for key, value in node.inputs.items()
    ]
    readers += [
        (("outputs", name, "reference"), s.get("reference")) for name, s in flow.outputs.items()
    ]
    for where, value in readers:
        found = _reference(flow, where, value)
        if found is not None and found.node in later:
            message = f"'{found.node}' is an aggregation node: it runs once, after every line"
            problems.append(flow.problem(where, message))
    if problems:
        raise DefinitionError(problems)
    return dataclasses.replace(flow, nodes=[n for n in flow.nodes if not is_aggregation(n)])


def aggregation(
    flow: Flow, names: Names, outputs: dict[str, str], workflow_name: str
) -> Aggregation:
    """The aggregation nodes of `flow` (in an order that runs), and the line outputs they read
    (`outputs`: the flow's own, which a line value reuses when it is the same)."""
    nodes = [node for node in flow.nodes if is_aggregation(node)]
    found = Aggregation(identifier(flow.name))
    reads: dict[str, set[str]] = {node.name: set() for node in nodes}
    problems: list[Problem] = []
    for node in nodes:
        for key, value in node.inputs.items():
            reference = _reference(flow, (*node.path, "inputs", key), value, problems)
            if reference is not None and reference.node in reads:
                reads[node.name].add(reference.node)
    if problems:
        raise DefinitionError(problems)
    for node in ordered(dataclasses.replace(flow, nodes=nodes), reads):
        try:
            found.nodes.append(_node(flow, node, names, outputs, found, workflow_name))
        except NotMapped as limit:
            found.limits.append(limit.problem)
    return found


def _node(
    flow: Flow,
    node: Node,
    names: Names,
    outputs: dict[str, str],
    found: Aggregation,
    workflow_name: str,
) -> AggregationNode:
    if node.type != "python" or node.source.get("type", "code") != "code":
        what = f"type {node.type!r}" if node.type != "python" else "a tool from a package"
        raise NotMapped(
            flow.problem(
                (*node.path, "aggregation"), f"an aggregation node of {what} is not imported"
            )
        )
    function = checked_tool(flow, node)
    if function.connections:
        where = (*node.path, "inputs")
        raise NotMapped(
            flow.problem(where, "an aggregation node with a connection is not imported")
        )
    inputs: dict[str, tuple[str, Any, tuple[str, ...]]] = {}
    for key, value in node.inputs.items():
        reference = parse(value)
        if reference is None:
            inputs[key] = ("value", value, ())
        elif reference.node is not None and reference.node not in names.outputs:
            inputs[key] = ("node", reference.node, reference.fields)
        else:
            whole = dataclasses.replace(reference, fields=())
            inputs[key] = (
                "lines",
                _line_output(names.expression(whole), outputs, found),
                reference.fields,
            )
    action = f"{workflow_name}.aggregate.{identifier(function.name)}"
    tool = python_tool(action, node.source["path"], function)
    return AggregationNode(node.name, tool, inputs)


def _line_output(name: str, outputs: dict[str, str], found: Aggregation) -> str:
    """The line definition's output holding `name` (a step output or a variable)."""
    template = "{{ " + name + " }}"
    for output, given in {**outputs, **found.outputs}.items():
        if given == template:
            return output
    fresh, n = name, 2
    while fresh in outputs or fresh in found.outputs:
        fresh, n = f"{name}_{n}", n + 1
    found.outputs[fresh] = template
    return fresh


def _reference(flow: Flow, where: Any, value: Any, problems: list[Problem] | None = None) -> Any:
    try:
        return checked_reference(flow, where, value)
    except DefinitionError as exc:
        if problems is None:
            raise
        problems += exc.problems
        return None
