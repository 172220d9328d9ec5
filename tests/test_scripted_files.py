"""Test files and scripts without a server: the docs' example, the JSON Schema, and how a
script hands out its entries."""

from __future__ import annotations

import json
import re

import pytest

from engine.settings import Settings
from engine.testing.files import Case, Expect, TestFile, load_tests, script_of
from tests.conftest import ROOT
from workflows.errors import DefinitionError
from workflows.scripts import ScriptPlayer


def test_the_docs_example_test_file_is_valid_against_its_definition(tmp_path):
    docs = (ROOT / "docs" / "testing.md").read_text()
    example = re.search(r"```yaml\n(.*?)```", docs, re.DOTALL)
    assert example is not None
    (tmp_path / "ticket_triage.yaml").write_text(
        (ROOT / "definitions" / "ticket_triage.yaml").read_text()
    )
    (tmp_path / "t.test.yaml").write_text(example.group(1))
    loaded = load_tests(tmp_path / "t.test.yaml", Settings.from_env({}, connection=False))
    assert loaded.cases[0].case.expect.outputs["queue"] == "finance"


def test_the_committed_json_schema_is_the_models(tmp_path):
    committed = json.loads((ROOT / "schema" / "test.schema.json").read_text())
    generated = TestFile.model_json_schema()
    skip = ("$schema", "title")
    assert {k: v for k, v in committed.items() if k not in skip} == {
        k: v for k, v in generated.items() if k not in skip
    }


def test_a_for_each_steps_list_gives_each_item_its_own_calls_and_errors_take_attempts():
    tests = load_tests(
        ROOT / "definitions" / "summarize_translate.test.yaml",
        Settings.from_env({}, connection=False),
    )
    script = script_of(
        tests.loaded,
        {
            "summarize": [{"error": 429}, {"error": 500}, "ok", "again"],
            "translate": ["a", ["b", "c"]],
        },
    )
    player = ScriptPlayer(script)
    first = player.replies("summarize", "summarize")
    assert [e.error for e in first or []] == [429, 500, None]  # one call, three attempts
    player.used("summarize", "summarize", 3)
    assert [e.value for e in player.replies("summarize", "summarize") or []] == ["again"]
    assert [e.value for e in player.replies("translate", "translate/1") or []] == ["b"]
    player.used("translate", "translate/1", 1)
    assert [e.value for e in player.replies("translate", "translate/1") or []] == ["c"]
    assert [e.value for e in player.replies("translate", "translate/0") or []] == ["a"]
    assert player.replies("translate", "translate/2") == []  # no reply: the call fails


def test_a_tool_calling_steps_replies_and_tool_results_are_counted_apart():
    tests = load_tests(
        ROOT / "definitions" / "research_agent.test.yaml",
        Settings.from_env({}, connection=False),
    )
    player = ScriptPlayer(tests.cases[0].script)
    [turn] = player.replies("research", "research") or []
    assert turn.tool_calls[0].name == "http_fetch"
    player.used("research", "research", 1)  # the model's turn is over...
    [fetched] = player.action("research", "research") or []
    assert fetched.value["status"] == 200  # ...and the tool still gets its first result
    [answer] = player.replies("research", "research") or []
    assert answer.value["citations"]


def test_the_language_reference_names_every_key_of_a_test_file():
    text = (ROOT / "docs" / "language.md").read_text()
    section = text.split("## Test files", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"^\| `([^`]+)` \|", section, re.MULTILINE))
    keys = {*TestFile.model_fields}
    keys |= {f"cases[].{name}" for name in Case.model_fields if name != "expect"}
    keys |= {f"cases[].expect.{name}" for name in Expect.model_fields}
    assert named == keys


def test_a_test_file_that_is_not_text_gets_one_located_line(tmp_path):
    """Read as definitions are (activities/definitions.py): a binary file was a traceback."""
    path = tmp_path / "bin.test.yaml"
    path.write_bytes(b"definition: x.yaml\ncases:\n\xff\n")
    with pytest.raises(DefinitionError) as caught:
        load_tests(path, Settings())
    assert (
        str(caught.value) == f"{path}:3:1: not UTF-8 text (byte 0xff); a test file is a YAML file"
    )
