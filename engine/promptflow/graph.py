"""The flow's graph: which nodes each node reads (inputs and `activate.when`), every
reference checked, the nodes in an order that runs, and which may be skipped."""

from __future__ import annotations

import graphlib
from collections.abc import Iterator
from typing import Any

from engine.promptflow.dag import Flow, Node
from engine.promptflow.references import BadReference, Reference, parse
from workflows.errors import DefinitionError, Problem
from workflows.source import Path as YamlPath
from workflows.suggest import suggest


def references(node: Node) -> Iterator[tuple[YamlPath, Any]]:
    """Every value of a node that may hold a reference, with where it is."""
    for key, value in node.inputs.items():
        yield (*node.path, "inputs", key), value
    activate = node.data.get("activate")
    if isinstance(activate, dict) and "when" in activate:
        yield (*node.path, "activate", "when"), activate["when"]


def checked_reference(flow: Flow, where: YamlPath, value: Any) -> Reference | None:
    """The reference `value` holds (None for a literal), or a located problem."""
    try:
        found = parse(value)
    except BadReference as exc:
        raise DefinitionError([flow.problem(where, str(exc))]) from None
    if found is None:
        return None
    if found.node is None and found.name not in flow.inputs:
        message = f"no flow input '{found.name}'" + suggest(found.name, set(flow.inputs))
        raise DefinitionError([flow.problem(where, message)])
    nodes = {node.name for node in flow.nodes}
    if found.node is not None and found.node not in nodes:
        message = f"no node '{found.node}'" + suggest(found.node, nodes)
        raise DefinitionError([flow.problem(where, message)])
    return found


def dependencies(flow: Flow) -> dict[str, set[str]]:
    """Node: the nodes it reads. Every reference of the flow is checked (all problems)."""
    problems: list[Problem] = []
    found: dict[str, set[str]] = {}
    for node in flow.nodes:
        found[node.name] = set()
        for where, value in references(node):
            try:
                reference = checked_reference(flow, where, value)
            except DefinitionError as exc:
                problems += exc.problems
                continue
            if reference is not None and reference.node is not None:
                found[node.name].add(reference.node)
    for name, settings in flow.outputs.items():
        try:
            checked_reference(flow, ("outputs", name, "reference"), settings.get("reference"))
        except DefinitionError as exc:
            problems += exc.problems
    if problems:
        raise DefinitionError(problems)
    return found


def ordered(flow: Flow, reads: dict[str, set[str]]) -> list[Node]:
    """The nodes, each after the nodes it reads (file order otherwise), or the cycle."""
    by_name = {node.name: node for node in flow.nodes}
    sorter = graphlib.TopologicalSorter(reads)
    try:
        sorter.prepare()
    except graphlib.CycleError as exc:
        ring = list(reversed(exc.args[1][:-1]))  # each node reads the next
        first = min(ring, key=lambda name: by_name[name].index)
        at = ring.index(first)
        path = " -> ".join([*ring[at:], *ring[:at], first])
        raise DefinitionError(
            [flow.problem((*by_name[first].path, "name"), f"the nodes read each other: {path}")]
        ) from None
    done: list[Node] = []
    placed: set[str] = set()
    while len(done) < len(flow.nodes):  # file order among the ready ones
        node = next(n for n in flow.nodes if n.name not in placed and reads[n.name] <= placed)
        done.append(node)
        placed.add(node.name)
    return done


def maybe_skipped(order: list[Node], reads: dict[str, set[str]]) -> set[str]:
    """Nodes a run may bypass: those with `activate`, and (as Prompt flow does) those without
    it whose every node input comes from a node that may be bypassed."""
    found: set[str] = set()
    for node in order:
        if "activate" in node.data or (reads[node.name] and reads[node.name] <= found):
            found.add(node.name)
    return found
