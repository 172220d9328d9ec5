"""Reading a Prompt flow folder's `flow.dag.yaml`: its inputs, outputs and nodes, each
remembering where it stands in the file, so every problem is one located line."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from activities.definitions import read_text
from workflows.errors import DefinitionError, Problem
from workflows.source import Path as YamlPath
from workflows.source import Source, parse_yaml

DAG_FILE = "flow.dag.yaml"
FLEX_FILE = "flow.flex.yaml"


@dataclass(frozen=True)
class Node:
    """One node of the flow, as written."""

    name: str
    index: int
    data: dict[str, Any]
    at: YamlPath | None = None
    """Where its settings are written, when not at `nodes[index]` (a variant's node)."""

    @property
    def path(self) -> YamlPath:
        return self.at if self.at is not None else ("nodes", self.index)

    @property
    def type(self) -> str:
        return str(self.data.get("type", ""))

    @property
    def inputs(self) -> dict[str, Any]:
        found = self.data.get("inputs")
        return found if isinstance(found, dict) else {}

    @property
    def source(self) -> dict[str, Any]:
        found = self.data.get("source")
        return found if isinstance(found, dict) else {}


@dataclass(frozen=True)
class Flow:
    """A flow.dag.yaml read and located; `shown` is how its file is named in messages."""

    folder: Path
    shown: str
    source: Source
    inputs: dict[str, dict[str, Any]]
    outputs: dict[str, dict[str, Any]]
    nodes: list[Node]

    @property
    def name(self) -> str:
        return self.folder.resolve().name

    def problem(self, path: YamlPath, message: str, *, at_key: bool = False) -> Problem:
        return self.source.problem(path, message, at_key=at_key)

    def shown_file(self, name: str) -> str:
        """A file of the flow's folder, named as messages name it."""
        return str(Path(self.shown).parent / name)


def read_flow(folder: Path, shown_folder: str) -> Flow:
    """The flow in `folder`, or a DefinitionError naming what is wrong and where."""
    dag = folder / DAG_FILE
    shown = str(Path(shown_folder) / DAG_FILE)
    if not dag.is_file():
        flex = folder / FLEX_FILE
        if flex.is_file():
            reason = "a flex flow (Python code as the flow) is not imported: only DAG flows are"
            raise DefinitionError([Problem(str(Path(shown_folder) / FLEX_FILE), 1, 1, reason)])
        where = "no such directory" if not folder.is_dir() else f"no {DAG_FILE} in it"
        raise DefinitionError([Problem(shown_folder, 1, 1, f"not a Prompt flow folder: {where}")])
    source = parse_yaml(read_text(dag, shown, "a flow"), shown)
    if source.problems:
        raise DefinitionError(source.problems)
    data = source.data
    if not isinstance(data, dict):
        raise DefinitionError([source.problem((), "a flow is a mapping (inputs, outputs, nodes)")])
    if "entry" in data:
        reason = "a flex flow (entry: a Python function) is not imported: only DAG flows are"
        raise DefinitionError([source.problem(("entry",), reason, at_key=True)])
    problems: list[Problem] = []
    inputs = _mapping_of_mappings(source, data, "inputs", problems, value_key="default")
    outputs = _mapping_of_mappings(source, data, "outputs", problems, value_key="reference")
    nodes = _nodes(source, data.get("nodes"), problems)
    if problems:
        raise DefinitionError(problems)
    return Flow(folder, shown, source, inputs, outputs, nodes)


def _mapping_of_mappings(
    source: Source, data: dict[str, Any], key: str, problems: list[Problem], value_key: str
) -> dict[str, dict[str, Any]]:
    """`inputs`/`outputs`: name -> settings (a bare value is the default or the reference)."""
    given = data.get(key)
    if given is None:
        return {}
    if not isinstance(given, dict):
        problems.append(source.problem((key,), f"'{key}' is a mapping of names to settings"))
        return {}
    return {
        str(name): value if isinstance(value, dict) else {value_key: value}
        for name, value in given.items()
    }


def _nodes(source: Source, given: Any, problems: list[Problem]) -> list[Node]:
    if not isinstance(given, list) or not given:
        problems.append(source.problem(("nodes",), "a flow needs 'nodes', a list of nodes"))
        return []
    nodes: list[Node] = []
    seen: set[str] = set()
    for index, data in enumerate(given):
        if not isinstance(data, dict) or not isinstance(data.get("name"), str):
            problems.append(source.problem(("nodes", index), "a node is a mapping with a 'name'"))
            continue
        name = data["name"]
        if name in seen:
            problems.append(
                source.problem(("nodes", index, "name"), f"two nodes are named {name!r}")
            )
            continue
        seen.add(name)
        nodes.append(Node(name, index, data))
    return nodes
