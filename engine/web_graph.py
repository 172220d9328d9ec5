"""The step graph on a run's page, laid out on the server in layers (a step one row below the
lowest step it waits for; steps of a row in the definition's order), drawn as SVG by the
template: no script, no layout library. Pure."""

from __future__ import annotations

from graphlib import TopologicalSorter

from pydantic import BaseModel

NODE_WIDTH = 150
NODE_HEIGHT = 30
GAP_X = 24
GAP_Y = 34
MAX_LABEL = 18


class Node(BaseModel):
    id: str
    label: str
    state: str
    x: int
    y: int


class Graph(BaseModel):
    width: int
    height: int
    nodes: list[Node]
    edges: list[str]
    """SVG path data, one curve from each step to each step waiting for it."""


def layout(order: list[str], waits: dict[str, list[str]], states: dict[str, str]) -> Graph:
    known = set(order)
    deps = {step: [d for d in waits.get(step, []) if d in known] for step in order}
    row: dict[str, int] = {}
    for step in TopologicalSorter(deps).static_order():
        row[step] = 1 + max((row[d] for d in deps[step]), default=-1)
    rows: dict[int, list[str]] = {}
    for step in order:
        rows.setdefault(row[step], []).append(step)
    at: dict[str, tuple[int, int]] = {}
    for number, steps in rows.items():
        for column, step in enumerate(steps):
            at[step] = (column * (NODE_WIDTH + GAP_X), number * (NODE_HEIGHT + GAP_Y))
    nodes = [
        Node(id=step, label=_label(step), state=states.get(step, "waiting"), x=x, y=y)
        for step, (x, y) in at.items()
    ]
    edges = []
    for step in order:
        x2, y2 = at[step]
        for dep in deps[step]:
            x1, y1 = at[dep]
            start = (x1 + NODE_WIDTH // 2, y1 + NODE_HEIGHT)
            end = (x2 + NODE_WIDTH // 2, y2)
            middle = (start[1] + end[1]) // 2
            edges.append(
                f"M{start[0]},{start[1]} C{start[0]},{middle} {end[0]},{middle} {end[0]},{end[1]}"
            )
    columns = max((len(steps) for steps in rows.values()), default=0)
    return Graph(
        width=max(columns * (NODE_WIDTH + GAP_X) - GAP_X, 0) + 2,
        height=max(len(rows) * (NODE_HEIGHT + GAP_Y) - GAP_Y, 0) + 2,
        nodes=nodes,
        edges=edges,
    )


def _label(step: str) -> str:
    return step if len(step) <= MAX_LABEL else step[: MAX_LABEL - 1] + "…"
