"""Which steps wait for which (DSL.md, "Order and parallelism").

A step without `depends_on` waits for every step above it; one with `depends_on` waits for
those steps. Either way it also waits for every step whose outputs its templates read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from workflows.errors import TemplateError
from workflows.step_types import BUILT_IN
from workflows.templates import references

if TYPE_CHECKING:
    from workflows.source import Path

INPUT_FIELDS = (
    "when", "for_each", "prompt", "system", "params", "values", "variables", "tools", "messages",
    "images",
)  # fmt: skip
"""Fields rendered before a step runs; `validate` reads the step's own outputs, after."""
TEMPLATE_FIELDS = (*INPUT_FIELDS, "validate")

Read = Callable[[str], tuple[set[str], set[str]]]
"""What a template reads (`templates.references`), maybe remembered (`remembered`)."""


def remembered(read: Read = references) -> Read:
    """`read` that parses each distinct template once: validation asks about every template
    three times (names, order, cycles), and parsing is most of its cost."""
    seen: dict[str, tuple[set[str], set[str]] | TemplateError] = {}

    def cached(template: str) -> tuple[set[str], set[str]]:
        if template not in seen:
            try:
                seen[template] = read(template)
            except TemplateError as exc:
                seen[template] = exc
        found = seen[template]
        if isinstance(found, TemplateError):
            raise found
        return found

    return cached


def templates_of(
    step: dict[str, Any], fields: tuple[str, ...] = TEMPLATE_FIELDS
) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """Every template string in a raw step's fields, with its path inside the step."""
    for field in fields:
        value = step.get(field)
        if value is not None:  # most fields of most steps are absent
            yield from template_strings(value, (field,))


def template_strings(
    value: Any, path: tuple[str | int, ...] = ()
) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """Every template string inside a value (strings in nested lists and dicts)."""
    if isinstance(value, str):
        if "{{" in value or "{%" in value:
            yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from template_strings(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from template_strings(item, (*path, index))


def referenced_steps(
    step: dict[str, Any], owners: dict[str, str], read: Read = references
) -> set[str]:
    """Step ids a raw step reads from, by output name or through `steps.<id>`."""
    found: set[str] = set()
    for _, template in templates_of(step, INPUT_FIELDS):
        try:
            names, step_ids = read(template)
        except TemplateError:
            continue
        found |= step_ids | {owners[name] for name in names if name in owners}
    return found


def output_owners(steps: list[dict[str, Any]]) -> dict[str, str]:
    """Output name to the id of the (first) raw step that declares it."""
    owners: dict[str, str] = {}
    for step in steps:
        for name in raw_output_names(step):
            owners.setdefault(name, str(step.get("id")))
    return owners


def raw_output_names(step: dict[str, Any]) -> list[str]:
    return [name for _, name in output_paths((), step)]


def output_paths(path: Path, step: dict[str, Any]) -> list[tuple[Path, str]]:
    """A raw step's output names, each with where it is written (under `path`), as its step
    type declares them (a `set` step's value keys, others' declared outputs; a step type
    added to the built-in ones declares outputs)."""
    return BUILT_IN.model_of(step).raw_output_paths(path, step)


def dependencies(
    steps: list[dict[str, Any]], owners: dict[str, str], read: Read = references
) -> dict[str, set[str]]:
    """Each step id to the ids it waits for (raw steps, so validation can use it too).

    "Every step above" is kept small: a step without depends_on waits for every step above
    it, so the next one need only wait for it (plus any explicit steps after it). The order
    is the same; the graph stays linear in the number of steps."""
    graph: dict[str, set[str]] = {}
    frontier: list[str] = []
    for step in steps:
        step_id = step.get("id")
        if not isinstance(step_id, str):
            continue
        explicit = step.get("depends_on")
        waits = set(explicit) if isinstance(explicit, list) else set(frontier)
        waits |= referenced_steps(step, owners, read)
        graph[step_id] = {str(dep) for dep in waits}
        frontier = [*frontier, step_id] if isinstance(explicit, list) else [step_id]
    return graph


def components(graph: dict[str, set[str]]) -> dict[str, int]:
    """Each step id to its strongly connected component (Tarjan's, without recursion): two
    steps wait for each other, directly or not, exactly when they share one. Linear in
    steps and edges, where asking step by step was quadratic on a long chain."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    component: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    count = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root] & graph.keys())))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            for dep in edges:
                if dep not in index:
                    index[dep] = low[dep] = len(index)
                    stack.append(dep)
                    on_stack.add(dep)
                    work.append((dep, iter(sorted(graph[dep] & graph.keys()))))
                    break
                if dep in on_stack:
                    low[node] = min(low[node], index[dep])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component[member] = count
                        if member == node:
                            break
                    count += 1
    return component


def downstream(graph: dict[str, set[str]], start: str) -> set[str]:
    """`start` and every step that (transitively) waits for it."""
    found = {start}
    changed = True
    while changed:
        changed = False
        for step_id, waits in graph.items():
            if step_id not in found and waits & found:
                found.add(step_id)
                changed = True
    return found
