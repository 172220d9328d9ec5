"""A docs page run as a reader would: its ```bash blocks in order, in one shell, against a
fresh local stack with no provider keys; each ```text block after a command block holds
lines its output must show. In a ```text block, `<anything>` stands for text that changes
from run to run (ids, tokens).

A ```yaml block whose first line is `# NAME` is a file the reader saves as NAME; a block
whose info names a path (```yaml classify/flow.dag.yaml) shows a file the page's commands
copy, which its test compares with the file as it stands.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tests.conftest import ROOT

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


@dataclass
class Shown:
    """One file the page shows as it stands in the repository (```LANG PATH)."""

    line: int
    path: str
    text: str


def steps(doc: Path) -> list[Commands | Saved | Shown]:
    text = doc.read_text(encoding="utf-8")
    name = doc.relative_to(ROOT)
    found: list[Commands | Saved | Shown] = []
    for match in _FENCE.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        info, body = match.group(1).strip(), match.group(2)
        words = info.split()
        if info == "bash":
            found.append(Commands(line, body))
        elif info == "yaml" and (named := _FILE.match(body)):
            found.append(Saved(line, named.group(1), body))
        elif info == "text":
            assert found and isinstance(found[-1], Commands), (
                f"{name}:{line}: a ```text block follows the commands it shows"
            )
            found[-1].expected += [out for out in body.splitlines() if out.strip()]
        elif len(words) == 2:
            found.append(Shown(line, words[1], body))
        else:
            raise AssertionError(f"{name}:{line}: unexpected block ```{info}")
    return found


def _script(found: list[Commands | Saved | Shown]) -> str:
    """The page as one shell session: files written, command blocks between markers."""
    lines = ["set -euo pipefail", "exec 2>&1"]
    for index, step in enumerate(found):
        if isinstance(step, Saved):
            lines += [f"cat > {step.name} <<'END_OF_FILE'", step.text.rstrip("\n"), "END_OF_FILE"]
        elif isinstance(step, Commands):
            lines += [f"echo '@@block {index}@@'", step.text.rstrip("\n")]
    return "\n".join(lines) + "\necho '@@end@@'\n"


def _pattern(expected: str) -> re.Pattern[str]:
    parts = re.split(r"<[^<>]+>", expected)
    return re.compile(".+?".join(re.escape(part) for part in parts))


def run_page(doc: Path, env: dict[str, str], tmp_path: Path, timeout: int = 540) -> None:
    """Run every command of the page in `tmp_path/work`, with `llm-workflows` on the PATH;
    fail at the first block that stops, or whose output lacks a line it promises."""
    found = steps(doc)
    name = doc.relative_to(ROOT)
    shims = tmp_path / "bin"
    shims.mkdir()
    command = shims / "llm-workflows"  # what `pip install -e .` installs, on this checkout
    command.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{ROOT / "starter.py"}" "$@"\n')
    command.chmod(0o755)
    work = tmp_path / "work"
    work.mkdir()
    (work / "tests").symlink_to(ROOT / "tests")  # for pages that copy from the repository
    done = subprocess.run(
        ["bash", "-c", _script(found)],
        cwd=work,
        env={**env, "PATH": f"{shims}:{env['PATH']}"},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    output = done.stdout
    segments = dict(re.findall(r"^@@block (\d+)@@\n(.*?)(?=^@@)", output, re.MULTILINE | re.DOTALL))
    last = max(map(int, segments), default=None)
    where = found[last].line if last is not None else 0
    assert done.returncode == 0 and output.endswith("@@end@@\n"), (
        f"{name}:{where}: the commands stopped with exit {done.returncode}:\n" + output[-3000:]
    )
    for index, step in enumerate(found):
        if not isinstance(step, Commands):
            continue
        shown = segments[str(index)].splitlines()
        for expected in step.expected:
            pattern = _pattern(expected)
            assert any(pattern.fullmatch(line) for line in shown), (
                f"{name}:{step.line}: no line of the output is {expected!r}:\n" + "\n".join(shown)
            )
