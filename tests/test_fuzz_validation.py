"""Random mutations of valid files never produce a traceback: only located, one-line problems."""

from __future__ import annotations

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.examples import EXAMPLES
from workflows.definition import Definition
from workflows.errors import DefinitionError
from workflows.validation import load_definition

TEXTS = [path.read_text() for path in EXAMPLES]
LOCATED = re.compile(r"^f\.yaml:\d+:\d+: [^\n]+$")
FRAGMENTS = [
    "{{",
    "}}",
    "{%",
    ":",
    "- ",
    "  ",
    "\t",
    "&a",
    "*a",
    "[",
    "]",
    "'",
    '"',
    "#",
    "\n",
    "type: set",
    "id: x",
    "{{ steps.x }}",
    "depends_on: [x]",
    "for_each: 3",
    "null",
]


@st.composite
def mutated(draw: st.DrawFn) -> str:
    lines = draw(st.sampled_from(TEXTS)).splitlines()
    for _ in range(draw(st.integers(1, 4))):
        index = draw(st.integers(0, len(lines) - 1))
        kind = draw(st.sampled_from(["delete", "duplicate", "insert", "cut", "indent"]))
        if kind == "delete" and len(lines) > 1:
            del lines[index]
        elif kind == "duplicate":
            lines.insert(index, lines[index])
        elif kind == "insert":
            line = lines[index]
            at = draw(st.integers(0, len(line)))
            lines[index] = line[:at] + draw(st.sampled_from(FRAGMENTS)) + line[at:]
        elif kind == "cut":
            line = lines[index]
            at = draw(st.integers(0, len(line)))
            lines[index] = line[:at]
        else:
            lines[index] = draw(st.sampled_from(["", "  ", "    "])) + lines[index].lstrip()
    return "\n".join(lines) + "\n"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_definitions_give_located_problems_or_a_definition(text: str):
    try:
        assert isinstance(load_definition(text, "f.yaml"), Definition)
    except DefinitionError as exc:
        assert exc.problems
        for problem in exc.problems:
            assert LOCATED.match(str(problem)), str(problem)


def test_a_step_type_spanning_lines_is_reported_on_one_line():
    """Found by the test above: a block scalar pulled into `type:` once broke the line."""
    text = (
        "workflow:\n  name: f\n  steps:\n    - id: a\n      type: llm_call\n\n"
        "        Answer from the pages you fetch.\n        Cite every page.\n"
        "      prompt: hi\n"
    )
    try:
        load_definition(text, "f.yaml")
    except DefinitionError as exc:
        assert all(LOCATED.match(str(problem)) for problem in exc.problems), exc.problems
        assert "unknown step type" in str(exc)
    else:
        raise AssertionError("a multi-line step type was accepted")
