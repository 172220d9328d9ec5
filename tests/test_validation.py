"""Validation: every example is valid; every invalid file gets its located messages."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft202012Validator

from activities.registry import params_models
from tests.conftest import ROOT
from tests.examples import EXAMPLE_ACTIONS
from workflows.actions import ACTION_PARAMS
from workflows.definition import Definition, json_schema
from workflows.errors import DefinitionError, VariablesError
from workflows.validation import load_definition, resolve_variables

EXAMPLES = sorted(
    p for p in (ROOT / "definitions").glob("*.yaml") if not p.name.endswith(".test.yaml")
)
INVALID = sorted((ROOT / "tests" / "invalid").glob("*.yaml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_is_valid(path: Path):
    """With the example actions an example names (ACTION_MODULES=activities.example_actions)."""
    actions = {**ACTION_PARAMS, **params_models(EXAMPLE_ACTIONS)}
    assert isinstance(load_definition(path.read_text(), str(path), actions), Definition)


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.name)
def test_invalid_file_reports_every_problem_located(path: Path):
    text = path.read_text()
    expected = re.findall(r"^# expect: (.+)$", text, flags=re.MULTILINE)
    with pytest.raises(DefinitionError) as caught:
        load_definition(text, "f.yaml")
    assert sorted(str(p).removeprefix("f.yaml:") for p in caught.value.problems) == sorted(expected)


def test_seed_style_outputs_and_short_variables_are_accepted():
    definition = load_definition(
        "workflow:\n  name: S\n  version: 1.0\n  variables: {who: x}\n  steps:\n"
        "    - {id: a, type: llm_call, model: gpt-4, prompt: '{{ who }}', outputs: [reply]}\n",
        "s.yaml",
    )
    assert definition.workflow.version == "1.0"
    assert definition.workflow.variables["who"].default == "x"
    assert definition.workflow.steps[0].outputs[0].name == "reply"


def test_alias_bomb_is_refused_quickly():
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [
        f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}]" for i in range(1, 12)
    ]
    with pytest.raises(DefinitionError, match="expands to over"):
        load_definition("\n".join(lines), "bomb.yaml")


VARS = load_definition(
    "workflow:\n  name: V\n  variables:\n    topic: AI\n"
    "    depth: {type: integer, required: true}\n  steps:\n"
    "    - {id: a, type: llm_call, model: gpt-4, prompt: '{{ topic }}{{ depth }}'}\n",
    "v.yaml",
)


def test_run_variables_override_defaults():
    assert resolve_variables(VARS, {"depth": 2, "topic": "X"}) == {"topic": "X", "depth": 2}


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({}, "variable 'depth' is required: pass it with --var depth=..."),
        ({"depth": "deep"}, "variable 'depth' must be of type integer, got 'deep'"),
        ({"depth": True}, "variable 'depth' must be of type integer, got True"),
        ({"depth": 1, "topik": "x"}, "unknown variable 'topik' — did you mean 'topic'?"),
    ],
)
def test_bad_run_variables_are_refused(given, message):
    with pytest.raises(VariablesError) as caught:
        resolve_variables(VARS, given)
    assert str(caught.value) == message


SCHEMA_FILE = ROOT / "schema" / "workflow.schema.json"


def test_committed_schema_is_up_to_date():
    committed = json.loads(SCHEMA_FILE.read_text())
    assert committed == json_schema(), (
        "run: python starter.py schema -o schema/workflow.schema.json"
    )


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_matches_the_schema_and_points_editors_at_it(path: Path):
    text = path.read_text()
    assert text.startswith("# yaml-language-server: $schema=../schema/workflow.schema.json\n")
    Draft202012Validator(json.loads(SCHEMA_FILE.read_text())).validate(yaml.safe_load(text))


def test_the_dsl_documents_own_examples_validate():
    path = ROOT / "tests" / "dsl_examples.yaml"
    definition = load_definition(path.read_text(), str(path))
    assert [step.id for step in definition.workflow.steps] == ["classify", "fetch", "finish"]
    assert definition.workflow.variables["depth"].required


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("workflow: " + "[" * 5000 + "]" * 5000, "f.yaml:1:1: nested too deeply to read"),
        ("workflow: " + "[" * 100 + "]" * 100, "f.yaml:1:75: nested deeper than 64 levels"),
        ("a: " + "x" * 1_000_001, "f.yaml:1:1: larger than 1000000 characters"),
        (
            'workflow:\n  name: T\n  steps:\n    - {id: a, type: set, values: {x: "{{ '
            + "(" * 3000
            + "1"
            + ")" * 3000
            + ' }}"}}\n',
            "f.yaml:4:39: template error: nested too deeply",
        ),
    ],
    ids=["deep-flow", "deep-data", "huge", "deep-template"],
)
def test_hostile_files_are_refused_quickly_and_clearly(text: str, message: str):
    with pytest.raises(DefinitionError) as caught:
        load_definition(text, "f.yaml")
    assert [str(p) for p in caught.value.problems] == [message]
