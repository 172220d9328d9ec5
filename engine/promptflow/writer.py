"""The imported definition as YAML text (with a comment above each step not imported), and
the command that runs it."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml


class _Dumper(yaml.SafeDumper):
    """Multi-line text as a `|` block, so prompts read as they were written."""


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _text)


def dump(value: Any, indent: int = 0) -> str:
    text = yaml.dump(value, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
    pad = " " * indent
    return "".join(pad + line if line.strip() else line for line in text.splitlines(True))


def definition_text(
    header: list[str], workflow: dict[str, Any], comments: Mapping[int, list[str]]
) -> str:
    """`workflow:` with its keys in order; `comments[i]` go above step i."""
    lines = [*_comment(header, ""), "workflow:\n"]
    for key, value in workflow.items():
        if key != "steps":
            lines.append(dump({key: value}, 2))
            continue
        lines.append("  steps:\n")
        for index, step in enumerate(value):
            lines += _comment(comments.get(index, []), "    ")
            lines.append(dump([step], 4))
    return "".join(lines)


def _comment(texts: list[str], pad: str) -> list[str]:
    """Comment lines: a text's every line commented (a name with a line break in it stays
    in the comment, never becomes YAML)."""
    return [f"{pad}# {line}\n" for text in texts for line in text.splitlines() or [""]]


def run_command(
    definition: Path, module: str | None, module_dir: Path, variables: list[tuple[str, str]]
) -> str:
    """`python starter.py run ...` with what it needs: ACTION_MODULES (and the folder it is in
    on PYTHONPATH) and a `--var` for each variable without a default."""
    parts: list[str] = []
    if module is not None:
        parts += [f"PYTHONPATH={shlex.quote(str(module_dir.resolve()))}"]
        parts += [f"ACTION_MODULES={module}"]
    parts += ["python", "starter.py", "run", shlex.quote(str(definition))]
    for name, example in variables:
        parts += ["--var", shlex.quote(f"{name}={example}")]
    return " ".join(parts)
