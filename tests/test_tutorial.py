"""docs/tutorial.md runs as written: its files are saved and its commands run, in order, in
one shell, as a reader would, against a fresh local stack with no provider keys; each
```text block after a command block holds lines its output must show (the page's
conventions: tests/doc_commands.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.doc_commands import Commands, Saved, run_page, steps
from workflows.definition import Definition
from workflows.validation import load_definition

DOC = ROOT / "docs" / "tutorial.md"
STEPS = steps(DOC)
FILES = [step for step in STEPS if isinstance(step, Saved) and "\nworkflow:" in step.text]


def test_the_tutorial_covers_what_it_promises():
    commands = "\n".join(step.text for step in STEPS if isinstance(step, Commands))
    final = FILES[-1].text
    for feature in ("variables:", "schema:", "enum:", "for_each:", "when:", "wait_for_signal"):
        assert feature in final
    assert "--replies replies.yaml" in commands  # a branch over a model's answer, offline
    for command in ("validate", "run", "start", "status", "signal", "result", "resume"):
        assert f"llm-workflows {command} " in commands
    assert "docs/tutorial.md" in (ROOT / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("saved", FILES, ids=[f"line{saved.line}" for saved in FILES])
def test_every_file_the_tutorial_saves_is_valid(saved: Saved):
    assert isinstance(load_definition(saved.text, saved.name), Definition)


@pytest.mark.timeout(600)
def test_every_command_of_the_tutorial_runs_and_shows_what_it_says(stack_env, tmp_path: Path):
    run_page(DOC, stack_env, tmp_path)
