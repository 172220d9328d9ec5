"""docs/tutorial.md runs as written: its files are saved and its commands run, in order, in
one shell, as a reader would, against a fresh local stack with no provider keys; each
```text block after a command block holds lines its output must show.

In a ```text block, `<anything>` stands for text that changes from run to run (ids,
tokens). A ```yaml block whose first line is `# NAME` is a file the reader saves as NAME.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import ROOT
from workflows.definition import Definition
from workflows.validation import load_definition

DOC = ROOT / "docs" / "tutorial.md"
_FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
_FILE = re.compile(r"# ([\w.-]+)\n")


@dataclass
class Commands:
    """One ```bash block and what its output must show."""

    line: int
    text: str
    expected: list[str] = field(default_factory=list)


@dataclass
class Saved:
    """One file the reader saves."""

    line: int
    name: str
    text: str


def _steps() -> list[Commands | Saved]:
    text = DOC.read_text(encoding="utf-8")
    steps: list[Commands | Saved] = []
    for match in _FENCE.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        info, body = match.group(1).strip(), match.group(2)
        if info == "bash":
            steps.append(Commands(line, body))
        elif info == "yaml" and (named := _FILE.match(body)):
            steps.append(Saved(line, named.group(1), body))
        elif info == "text":
            assert steps and isinstance(steps[-1], Commands), (
                f"docs/tutorial.md:{line}: a ```text block follows the commands it shows"
            )
            steps[-1].expected += [out for out in body.splitlines() if out.strip()]
        else:
            raise AssertionError(f"docs/tutorial.md:{line}: unexpected block ```{info}")
    return steps


STEPS = _steps()
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


def _script() -> str:
    """The tutorial as one shell session: files written, command blocks between markers."""
    lines = ["set -euo pipefail", "exec 2>&1"]
    for index, step in enumerate(STEPS):
        if isinstance(step, Saved):
            lines += [f"cat > {step.name} <<'END_OF_FILE'", step.text.rstrip("\n"), "END_OF_FILE"]
        else:
            lines += [f"echo '@@block {index}@@'", step.text.rstrip("\n")]
    return "\n".join(lines) + "\necho '@@end@@'\n"


def _pattern(expected: str) -> re.Pattern[str]:
    parts = re.split(r"<[^<>]+>", expected)
    return re.compile(".+?".join(re.escape(part) for part in parts))


@pytest.mark.timeout(600)
def test_every_command_of_the_tutorial_runs_and_shows_what_it_says(stack_env, tmp_path: Path):
    shims = tmp_path / "bin"
    shims.mkdir()
    command = shims / "llm-workflows"  # what `pip install -e .` installs, on this checkout
    command.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{ROOT / "starter.py"}" "$@"\n')
    command.chmod(0o755)
    env = {**stack_env, "PATH": f"{shims}:{stack_env['PATH']}"}
    work = tmp_path / "work"
    work.mkdir()
    done = subprocess.run(
        ["bash", "-c", _script()], cwd=work, env=env, capture_output=True, text=True, timeout=540
    )
    output = done.stdout
    segments = dict(re.findall(r"^@@block (\d+)@@\n(.*?)(?=^@@)", output, re.MULTILINE | re.DOTALL))
    last = max(map(int, segments), default=None)
    where = STEPS[last].line if last is not None else 0
    assert done.returncode == 0 and output.endswith("@@end@@\n"), (
        f"docs/tutorial.md:{where}: the commands stopped with exit {done.returncode}:\n"
        + output[-3000:]
    )
    for index, step in enumerate(STEPS):
        if not isinstance(step, Commands):
            continue
        shown = segments[str(index)].splitlines()
        for expected in step.expected:
            pattern = _pattern(expected)
            assert any(pattern.fullmatch(line) for line in shown), (
                f"docs/tutorial.md:{step.line}: no line of the output is {expected!r}:\n"
                + "\n".join(shown)
            )
