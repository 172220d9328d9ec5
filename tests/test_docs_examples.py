"""docs/language.md is the users' reference: every complete example in it must validate, and
the JSON Schema editors use must describe every field.

A complete example is a fenced block whose info string is exactly ``yaml`` and that starts
with ``workflow:``; fragments are fenced otherwise (``yaml snippet``) and are skipped.
The committed schema's equality with `starter.py schema` is tested in test_validation.py.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import ROOT
from workflows.definition import Definition, json_schema
from workflows.validation import load_definition

DOC = ROOT / "docs" / "language.md"
SCHEMA_FILE = ROOT / "schema" / "workflow.schema.json"
_FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


def _blocks() -> list[tuple[int, str, str]]:
    """Every fenced block of the doc: (line it starts on, info string, text)."""
    text = DOC.read_text(encoding="utf-8")
    return [
        (text.count("\n", 0, match.start()) + 1, match.group(1).strip(), match.group(2))
        for match in _FENCE.finditer(text)
    ]


EXAMPLES = [(line, body) for line, info, body in _blocks() if info == "yaml"]


def test_the_doc_has_its_examples():
    assert len(EXAMPLES) >= 15, "fewer ```yaml examples found than docs/language.md holds"


@pytest.mark.parametrize(("line", "text"), EXAMPLES, ids=[f"line{line}" for line, _ in EXAMPLES])
def test_every_complete_example_in_the_doc_validates(line: int, text: str):
    assert text.startswith("workflow:"), (
        f"docs/language.md:{line}: a ```yaml block is a whole file starting with 'workflow:'; "
        "fence a fragment as ```yaml snippet"
    )
    assert isinstance(load_definition(text, "docs/language.md"), Definition)


def _properties(node: Any, where: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every property of every object schema inside `node`, with where it is."""
    if isinstance(node, dict):
        for name, prop in (node.get("properties") or {}).items():
            yield f"{where}.{name}", prop
        for key, value in node.items():
            yield from _properties(value, f"{where}.{key}" if key != "properties" else where)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _properties(value, f"{where}[{index}]")


@pytest.mark.parametrize(
    "schema",
    [json_schema(), json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))],
    ids=["generated", "committed"],
)
def test_every_field_of_the_schema_has_a_description(schema: dict[str, Any]):
    found = list(_properties(schema, "#"))
    assert len(found) > 50
    missing = [where for where, prop in found if not str(prop.get("description", "")).strip()]
    assert not missing, f"fields without a description: {missing}"
