"""A flow's `node_variants`: a node with `use_variants: true` takes its settings from one of
its variants. Each variant becomes a flow of its own (the node's settings replaced by the
variant's), so each is imported as one definition, and `eval --variant NAME=FILE` compares
them on the same rows."""

from __future__ import annotations

import dataclasses
from typing import Any

from engine.promptflow.dag import Flow, Node
from engine.promptflow.run_spec import VariantChoice
from workflows.errors import DefinitionError, Problem
from workflows.source import Path as YamlPath
from workflows.suggest import suggest


@dataclasses.dataclass(frozen=True)
class NodeVariants:
    node: str
    default: str
    ids: list[str]
    """In the file's order, the default among them."""


def node_variants(flow: Flow) -> list[NodeVariants]:
    """Every node that uses variants, checked (all problems at once, located)."""
    given = flow.source.data.get("node_variants")
    given = given if isinstance(given, dict) else {}
    problems: list[Problem] = []
    found = []
    for node in flow.nodes:
        if not node.data.get("use_variants"):
            continue
        settings = given.get(node.name)
        variants = settings.get("variants") if isinstance(settings, dict) else None
        if not isinstance(variants, dict) or not variants:
            message = (
                f"node '{node.name}' uses variants: node_variants.{node.name}.variants lists none"
            )
            problems.append(flow.problem((*node.path, "use_variants"), message))
            continue
        where = ("node_variants", node.name)
        for variant_id, variant in variants.items():
            if not isinstance(variant, dict) or not isinstance(variant.get("node"), dict):
                at = (*where, "variants", variant_id)
                problems.append(
                    flow.problem(at, f"variant '{variant_id}' needs `node:`, its settings")
                )
        default = settings.get("default_variant_id") if isinstance(settings, dict) else None
        if default not in variants:
            near = suggest(str(default), set(variants)) if default is not None else ""
            message = f"default_variant_id {default!r} is not one of its variants{near}"
            place: YamlPath = (*where, "default_variant_id") if default is not None else where
            problems.append(flow.problem(place, message))
            continue
        found.append(NodeVariants(node.name, str(default), [str(v) for v in variants]))
    if problems:
        raise DefinitionError(problems)
    return found


def with_variant(flow: Flow, chosen: dict[str, str]) -> Flow:
    """The flow with each node that uses variants set to its chosen (else default) variant."""
    given = flow.source.data.get("node_variants") or {}
    nodes: list[Node] = []
    for node in flow.nodes:
        if not node.data.get("use_variants"):
            nodes.append(node)
            continue
        settings: dict[str, Any] = given[node.name]
        variant = chosen.get(node.name, settings["default_variant_id"])
        data = {**settings["variants"][variant]["node"], "name": node.name}
        at = ("node_variants", node.name, "variants", variant, "node")
        nodes.append(Node(node.name, node.index, data, at))
    return dataclasses.replace(flow, nodes=nodes)


def variant_flows(flow: Flow) -> list[tuple[VariantChoice | None, Flow]]:
    """The flow with every default variant (None), then each other variant on its own."""
    found: list[tuple[VariantChoice | None, Flow]] = [(None, with_variant(flow, {}))]
    for variants in node_variants(flow):
        for variant_id in variants.ids:
            if variant_id != variants.default:
                choice = VariantChoice(node=variants.node, variant=variant_id)
                found.append((choice, with_variant(flow, {variants.node: variant_id})))
    return found


def check_choice(flow: Flow, choice: VariantChoice | None, origin: str) -> None:
    """A run's `variant: ${node.id}` names a node that uses variants, and one of its own."""
    if choice is None:
        return
    known = {v.node: v for v in node_variants(flow)}
    if choice.node not in known:
        names = ", ".join(sorted(known)) or "none"
        raise DefinitionError(
            [Problem(origin, 1, 1, f"variant {choice}: no node '{choice.node}' uses variants "
                     f"(those that do: {names})")]
        )  # fmt: skip
    if choice.variant not in known[choice.node].ids:
        ids = ", ".join(known[choice.node].ids)
        raise DefinitionError(
            [Problem(origin, 1, 1, f"variant {choice}: node '{choice.node}' has {ids}")]
        )
