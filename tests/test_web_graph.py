"""The step graph of a run's page (engine/web_graph.py): layers, order and edges, no server."""

from __future__ import annotations

from engine.web_graph import GAP_Y, NODE_HEIGHT, layout


def test_a_step_sits_one_row_below_the_lowest_step_it_waits_for():
    waits = {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"], "late": ["a"]}
    graph = layout(["a", "b", "c", "d", "late"], waits, {"a": "done", "b": "running"})
    where = {node.id: (node.x, node.y) for node in graph.nodes}
    row = NODE_HEIGHT + GAP_Y
    assert [where[s][1] // row for s in ("a", "b", "c", "d", "late")] == [0, 1, 1, 2, 1]
    assert where["b"][0] < where["c"][0] < where["late"][0]  # a row keeps the file's order
    assert len(graph.edges) == 5
    states = [node.state for node in graph.nodes]
    assert states == ["done", "running", "waiting", "waiting", "waiting"]


def test_long_ids_are_cut_and_unknown_dependencies_ignored():
    graph = layout(["a-very-long-step-identifier"], {"a-very-long-step-identifier": ["gone"]}, {})
    assert graph.nodes[0].label == "a-very-long-step-…" and graph.edges == []
