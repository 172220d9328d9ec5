"""The names an imported flow uses: a variable per flow input, and per node a step id and
its one output (named after the node, so `${node.output}` reads as `{{ node }}`)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from engine.promptflow.dag import Flow
from engine.promptflow.references import Reference, expression

RESERVED = {"steps", "run", "secrets", "loop"}


def identifier(name: str) -> str:
    text = re.sub(r"\W", "_", name) or "_"
    return f"_{text}" if text[0].isdigit() else text


@dataclass
class Names:
    variables: dict[str, str] = field(default_factory=dict)
    """Flow input: variable."""
    steps: dict[str, str] = field(default_factory=dict)
    """Node: step id."""
    outputs: dict[str, str] = field(default_factory=dict)
    """Node: its step's one output."""

    @classmethod
    def of(cls, flow: Flow) -> Names:
        names = cls()
        taken = set(RESERVED)
        for name in flow.inputs:
            names.variables[name] = _fresh(identifier(name), taken)
        step_ids: set[str] = set()
        for node in flow.nodes:
            names.steps[node.name] = _fresh(identifier(node.name), step_ids)
            own = identifier(node.name)
            names.outputs[node.name] = _fresh(own if own not in taken else f"{own}_output", taken)
        return names

    def expression(self, reference: Reference) -> str:
        """The Jinja expression a (checked) reference reads."""
        if reference.node is None:
            return self.variables[reference.name]
        return expression(self.outputs[reference.node], reference.fields)


def _fresh(name: str, taken: set[str]) -> str:
    candidate, n = name, 2
    while candidate in taken:
        candidate, n = f"{name}_{n}", n + 1
    taken.add(candidate)
    return candidate
