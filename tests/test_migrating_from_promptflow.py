"""docs/migrating-from-promptflow.md as written: the files it shows are the test flows as
they stand, its table covers what a Prompt flow user brings, and its commands run in one
shell against a fresh local stack and show what it says (tests/doc_commands.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.doc_commands import Commands, Shown, run_page, steps

DOC = ROOT / "docs" / "migrating-from-promptflow.md"
FLOWS = ROOT / "tests" / "promptflow_flows"
STEPS = steps(DOC)
SHOWN = [step for step in STEPS if isinstance(step, Shown)]


@pytest.mark.parametrize("shown", SHOWN, ids=[shown.path for shown in SHOWN])
def test_every_file_the_page_shows_is_the_test_flows_file_as_it_stands(shown: Shown):
    assert (FLOWS / shown.path).read_text(encoding="utf-8") == shown.text, (
        f"docs/migrating-from-promptflow.md:{shown.line}: {shown.path} differs from "
        f"tests/promptflow_flows/{shown.path}"
    )


def test_the_page_maps_what_a_prompt_flow_user_brings_and_replaces_their_commands():
    text = DOC.read_text(encoding="utf-8")
    table = [line for line in text.splitlines() if line.startswith("| ")]
    for brought in (
        "`inputs:`", "chat_history", "`outputs:`", "`llm` node", "`prompt` node",
        "`python` node", "log_metric", "connections", "${node.output.field}", "activate:",
        "node_variants", "aggregation: true", "flex flow", "column_mapping", "${run.outputs.y}",
        "run: NAME", "variant: ${node.variant_1}", "environment_variables", "pf flow test",
        "pf run create",
    ):  # fmt: skip
        assert any(brought in row for row in table), f"no row of the table maps {brought}"
    commands = "\n".join(step.text for step in STEPS if isinstance(step, Commands))
    for command in ("import promptflow", "run classify.yaml", "eval classify.yaml", "--fail-under"):
        assert f"llm-workflows {command}" in commands or command in commands
    assert "-f classify/eval_run.yml" in commands and "--column-mapping" in commands


@pytest.mark.timeout(600)
def test_every_command_of_the_page_runs_and_shows_what_it_says(stack_env, tmp_path: Path):
    run_page(DOC, stack_env, tmp_path)
