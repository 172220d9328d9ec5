"""Tests with scripted replies (`starter.py test`): cases run the real workflow on the dev
server with only the provider and the stubbed actions replaced."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from xml.etree import ElementTree

import pytest

from engine.activity_catalog import build_actions
from engine.client import EngineClient
from engine.settings import Settings
from engine.testing.command import test as run_tests
from engine.testing.files import script_of
from tests.conftest import ROOT, new_worker
from workflows.errors import DefinitionError, RunFailed

TRIAGE = (ROOT / "definitions" / "ticket_triage.yaml").read_text()


@pytest.fixture
async def engine(client):
    # Stubbed actions still check their params; the examples' custom ones are loaded too.
    actions = build_actions(Settings.from_env({"ACTION_MODULES": "activities.example_actions"}))
    async with new_worker(client, {}, definitions_dir=ROOT, actions=actions) as worker:
        settings = dataclasses.replace(
            Settings.from_env({}),
            address=client.service_client.config.target_host,
            task_queue=worker.task_queue,
        )
        yield EngineClient(client, settings, start_worker=False)


def write_case(tmp_path: Path, body: str, definition: str = TRIAGE) -> Path:
    (tmp_path / "flow.yaml").write_text(definition)
    path = tmp_path / "flow.test.yaml"
    path.write_text("definition: flow.yaml\ncases:\n" + body)
    return path


async def run(engine: EngineClient, path: Path, **options) -> tuple[int, str]:
    lines: list[str] = []
    code = await run_tests([str(path)], engine.settings, client=engine, out=lines.append, **options)
    return code, "\n".join(lines)


BILLING = """\
  - name: billing
    replies:
      classify: {category: billing, urgency: 2}
      billing_reply: "Refunded."
    expect:
      outputs: {queue: finance}
"""


async def test_a_scripted_branch_passes(engine, tmp_path):
    code, text = await run(engine, write_case(tmp_path, BILLING))
    assert code == 0, text
    assert "PASS" in text and "::billing" in text


async def test_a_changed_expectation_fails_with_a_diff_naming_field_values_and_step(
    engine, tmp_path
):
    code, text = await run(engine, write_case(tmp_path, BILLING.replace("finance", "support")))
    assert code == 1
    assert "outputs.queue (step route):" in text
    assert "expected: 'support'" in text and "actual:   'finance'" in text
    assert "reproduce: python starter.py test" in text and "-k billing" in text


async def test_a_call_the_case_gives_no_reply_for_fails_naming_the_step(engine, tmp_path):
    body = BILLING.replace('      billing_reply: "Refunded."\n', "")
    code, text = await run(engine, write_case(tmp_path, body))
    assert code == 1
    assert "no scripted answer for a model call of step 'billing_reply'" in text


async def test_parallel_cases_never_see_each_others_replies(engine, tmp_path):
    cases = "".join(
        f"""\
  - name: ticket {n}
    replies:
      classify: {{category: billing, urgency: {n}}}
      billing_reply: "Reply {n}"
    expect:
      outputs: {{reply: "Reply {n}", urgency: {n}}}
"""
        for n in range(1, 6)
    )
    code, text = await run(engine, write_case(tmp_path, cases))
    assert code == 0, text
    assert text.count("PASS") == 5


async def test_k_picks_cases_and_junit_xml_has_suites_cases_and_failures(engine, tmp_path):
    body = BILLING + BILLING.replace("billing\n", "wrong\n", 1).replace("finance", "support")
    junit = tmp_path / "out" / "junit.xml"
    code, text = await run(engine, write_case(tmp_path, body), pattern="wrong", junit=str(junit))
    assert code == 1 and "::billing" not in text
    root = ElementTree.parse(junit).getroot()
    assert root.tag == "testsuites"
    [suite] = root.findall("testsuite")
    [case] = suite.findall("testcase")
    assert case.get("name") == "wrong" and float(case.get("time") or "x") >= 0
    failure = case.find("failure")
    assert failure is not None and "outputs.queue" in (failure.get("message") or "")


async def test_json_output_is_one_record_per_case(engine, tmp_path):
    code, text = await run(engine, write_case(tmp_path, BILLING), as_json=True)
    [record] = json.loads(text)
    assert code == 0 and record["passed"] is True and record["name"] == "billing"


async def test_a_run_left_waiting_fails_the_case_saying_what_it_waits_for(engine, tmp_path):
    definition = (ROOT / "definitions" / "content_pipeline.yaml").read_text()
    body = '  - name: no approval\n    replies: {draft: "A post."}\n'
    code, text = await run(engine, write_case(tmp_path, body, definition))
    assert code == 1
    assert "still waits for signal 'approve' (step review)" in text


async def test_the_example_tests_pass(engine):
    code, text = await run(engine, ROOT / "definitions")
    assert code == 0, text


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("  - name: a\n    replise: {}\n", "4:5: unknown key 'replise'"),
        (
            "  - name: a\n    replies: {clasify: x}\n",
            "4:15: no step 'clasify' in the definition",
        ),
        (
            "  - name: a\n    replies:\n      classify: {category: food, urgency: 2}\n",
            "5:17: the reply does not fit step 'classify''s outputs: category:",
        ),
        (
            "  - name: a\n    signals: {aprove: {}}\n",
            "4:15: no step waits for signal 'aprove'",
        ),
        (
            "  - name: a\n    expect: {outputs: {queu: x}}\n",
            "4:24: no output 'queu'",
        ),
    ],
)
def test_bad_test_files_get_one_located_line_each(tmp_path, body, message):
    from engine.testing.files import load_tests

    path = write_case(tmp_path, body)
    with pytest.raises(DefinitionError) as raised:
        load_tests(path, Settings.from_env({}, connection=False))
    [problem] = raised.value.problems
    assert str(problem).startswith(f"{path}:{message}")


def test_a_test_file_naming_a_missing_definition_is_located(tmp_path):
    from engine.testing.files import load_tests

    path = tmp_path / "x.test.yaml"
    path.write_text("definition: nowhere.yaml\ncases:\n  - name: a\n")
    with pytest.raises(
        DefinitionError, match=r"x.test.yaml:1:13: no definition file 'nowhere.yaml'"
    ):
        load_tests(path, Settings.from_env({}, connection=False))


async def test_the_status_of_a_failed_run_shows_the_step_that_failed_it(engine):
    loaded = engine.load_file(ROOT / "definitions" / "hello_world.yaml")
    script = script_of(loaded, {"greet": {"error": 400}})
    started = await engine.start(loaded, {}, script=script)
    with pytest.raises(RunFailed):
        await engine.result(started.execution_id)
    status = await engine.status(started.execution_id)
    greet = status.steps["greet"]
    assert greet.status == "failed" and greet.attempts == 1
    assert "HTTP 400" in (greet.error or "")


async def test_a_budget_expectation_fails_when_the_run_spent_more(engine, tmp_path):
    labels = (ROOT / "definitions" / "label_tickets.yaml").read_text()
    body = """\
  - name: tight
    replies: {label: [a, b, c]}
    expect: {budget: {max_tokens: 5}}
"""
    code, text = await run(engine, write_case(tmp_path, body, labels))
    assert code == 1
    assert "budget.max_tokens:" in text and "expected: 'at most 5'" in text


async def test_the_language_references_test_file_example_passes(engine, tmp_path):
    docs = (ROOT / "docs" / "language.md").read_text()
    [example] = re.findall(r"^```yaml test\n(.*?)^```", docs, re.MULTILINE | re.DOTALL)
    agent = (ROOT / "definitions" / "support_agent.yaml").read_text()
    (tmp_path / "support_agent.yaml").write_text(agent)
    (tmp_path / "agent.test.yaml").write_text(example)
    code, text = await run(engine, tmp_path / "agent.test.yaml")
    assert code == 0, text
    assert text.count("PASS") == 3
