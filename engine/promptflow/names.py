"""The names an imported flow uses: a variable per flow input, and per node a step id and
its one output (named after the node, so `${node.output}` reads as `{{ node }}`)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import jinja2

from engine.promptflow.dag import Flow
from engine.promptflow.references import Reference, expression
from workflows.checks import RESERVED_NAMES

MAX_NAME = 64
"""Of an id or a name made from a node's or an input's name (a step id may have 100)."""
JINJA_WORDS = {"true", "false", "none", "True", "False", "None", "and", "or", "not", "in"}
JINJA_WORDS |= {"is", "if", "else"} | set(jinja2.Environment().globals)
"""Names a template reads as something else: `{{ none }}` is null, `{{ not }}` an error,
`range` a function every template uses."""


def identifier(name: str) -> str:
    """An ASCII identifier (our ids and names are), at most MAX_NAME characters."""
    text = re.sub(r"[^A-Za-z0-9_]", "_", name)[:MAX_NAME] or "_"
    return f"_{text}" if text[0].isdigit() else text


@dataclass
class Names:
    variables: dict[str, str] = field(default_factory=dict)
    """Flow input: variable."""
    steps: dict[str, str] = field(default_factory=dict)
    """Node: step id."""
    outputs: dict[str, str] = field(default_factory=dict)
    """Node: its step's one output."""
    skippable: frozenset[str] = frozenset()
    """Nodes a run may bypass: their output is null, and so is any field of it."""

    @classmethod
    def of(cls, flow: Flow, skippable: frozenset[str] = frozenset()) -> Names:
        names = cls(skippable=skippable)
        taken = RESERVED_NAMES | JINJA_WORDS
        for name in flow.inputs:
            names.variables[name] = _fresh(identifier(name), taken)
        step_ids: set[str] = set()
        for node in flow.nodes:
            names.steps[node.name] = _fresh(identifier(node.name), step_ids)
            own = identifier(node.name)
            names.outputs[node.name] = _fresh(own if own not in taken else f"{own}_output", taken)
        return names

    def expression(self, reference: Reference) -> str:
        """The Jinja expression a (checked) reference reads; a field of a node that may be
        bypassed is null when it is (as in Prompt flow), not an error."""
        if reference.node is None:
            return self.variables[reference.name]
        output = self.outputs[reference.node]
        read = expression(output, reference.fields)
        if reference.fields and reference.node in self.skippable:
            return f"({read} if {output} is not none else none)"
        return read


def _fresh(name: str, taken: set[str]) -> str:
    candidate, n = name, 2
    while candidate in taken:
        candidate, n = f"{name}_{n}", n + 1
    taken.add(candidate)
    return candidate
