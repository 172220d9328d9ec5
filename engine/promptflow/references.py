"""Prompt flow's `${...}` references and literal values, written as our templates.

`${inputs.x}` is the variable `x`; `${node.output}` is the node's step output (every imported
step has one output, named after its node: `{{ node }}`), `${node.output.a.b}` a field of
it. A literal is the flow author's text, never a template: written as a Jinja literal."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

WHOLE = re.compile(r"^\$\{([^{}]*)\}$")
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
TEMPLATE_MARKS = ("{{", "{%", "{#")
METHODS = frozenset(dir(dict)) | frozenset(dir(list)) | frozenset(dir(str))
"""Names Jinja's `a.name` would find as a method of an output's value before its key."""


@dataclass(frozen=True)
class Reference:
    """`${inputs.NAME}` (node is None) or `${NODE.output.FIELD...}`."""

    name: str
    node: str | None = None
    fields: tuple[str, ...] = ()


class BadReference(ValueError):
    """A `${...}` that names nothing Prompt flow knows how to read."""


def parse(value: Any) -> Reference | None:
    """The reference a node input, an output or a condition holds, or None for a literal."""
    if not isinstance(value, str):
        return None
    found = WHOLE.match(value.strip())
    if found is None:
        return None
    parts = found.group(1).strip().split(".")
    if len(parts) == 2 and parts[0] == "inputs" and parts[1]:
        return Reference(parts[1])
    if len(parts) >= 2 and parts[0] and parts[1] == "output" and all(parts[2:]):
        return Reference("", parts[0], tuple(parts[2:]))
    raise BadReference(
        f"{value!r} is not a reference Prompt flow reads: write ${{inputs.NAME}}, "
        "${NODE.output} or ${NODE.output.FIELD}"
    )


def expression(head: str, fields: tuple[str, ...] = ()) -> str:
    """A Jinja expression: a name and its fields (`a.b`, or `a["b c"]` for other keys and
    for names a value's own methods have: `a.items` is dict.items, `a["items"]` the key)."""
    text = head
    for name in fields:
        plain = IDENTIFIER.match(name) and not name.startswith("_") and name not in METHODS
        text += f".{name}" if plain else f"[{literal(name)}]"
    return text


def literal(value: Any) -> str:
    """A Jinja literal for a plain value (string, number, boolean, null, list, mapping)."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(literal(item) for item in value) + "]"
    if isinstance(value, dict):
        pairs = (f"{literal(str(key))}: {literal(item)}" for key, item in value.items())
        return "{" + ", ".join(pairs) + "}"
    # Jinja reads string literals with Python's escapes: JSON's are a subset of them
    return json.dumps(str(value), ensure_ascii=False)


def as_data(value: Any) -> Any:
    """A literal for a field whose strings are templates (action params): a string that
    would read as a template becomes one Jinja string literal, so it stays the same text."""
    if isinstance(value, str):
        if any(mark in value for mark in TEMPLATE_MARKS):
            return "{{ " + literal(value) + " }}"
        return value
    if isinstance(value, list):
        return [as_data(item) for item in value]
    if isinstance(value, dict):
        return {key: as_data(item) for key, item in value.items()}
    return value
