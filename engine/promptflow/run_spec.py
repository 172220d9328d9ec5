"""Prompt flow runs read: a run.yml (`pf run create -f run.yml`) or the flags of `pf run
create` given on our command line (`--flow`, `--data`, `--column-mapping x='${data.y}'`,
`--run`, `--variant '${node.variant_1}'`), into one `RunSpec`, every problem located
(FILE:LINE:COL in a run file, the flag on a command line). An evaluation run's `run:` is
resolved to the batch run it evaluates. engine/promptflow/run_command.py turns a spec into
the `starter.py eval` command that does the same here.
"""

from __future__ import annotations

import argparse
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict

from engine.cli_input import name_values
from engine.testing.files import read_yaml
from workflows.errors import DefinitionError, Problem, UsageError
from workflows.source import Source
from workflows.suggest import suggest

KEYS = {"flow", "data", "column_mapping", "variant", "run", "name", "environment_variables"}
DESCRIPTIVE = {"$schema", "display_name", "description", "tags"}
"""Keys of a run file that say nothing about what runs: accepted and left out."""
FLAGS = {key: "--" + key.replace("_", "-") for key in KEYS}
_REFERENCE = re.compile(r"^\$\{(data|run\.inputs|run\.outputs)\.([^{}]+)\}$")
_VARIANT = re.compile(r"^\$\{([A-Za-z_][\w-]*)\.([A-Za-z_][\w-]*)\}$")
FLOW_FILE = "flow.dag.yaml"


class ColumnValue(BaseModel):
    """One value of a column mapping: a data column, the evaluated run's input or output,
    or a fixed text (`value`) for every line."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    source: Literal["data", "run.inputs", "run.outputs", "value"]
    name: str
    """The column, input or output named; for `value`, the text itself."""


class VariantChoice(BaseModel):
    """`${node.variant_id}`: the variant of one node that runs instead of its default."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    node: str
    variant: str

    def __str__(self) -> str:
        return f"${{{self.node}.{self.variant}}}"


class RunSpec(BaseModel):
    """A Prompt flow run as given; paths absolute, references parsed, `run` resolved."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    origin: str
    """Where it was given: the run file, or `the command line`."""
    flow: Path
    data: Path | None = None
    column_mapping: dict[str, ColumnValue] = {}
    variant: VariantChoice | None = None
    run: RunSpec | None = None
    """The batch run an evaluation run evaluates."""
    name: str | None = None
    environment_variables: dict[str, str] = {}


def load_run_file(path: Path) -> RunSpec:
    """A run.yml; DefinitionError lists every problem as FILE:LINE:COL."""
    raw, source = _read(path)
    return _checked(raw, _Where(source), path.parent.absolute(), nested=False)


def parse_flags(argv: list[str], cwd: Path | None = None) -> RunSpec:
    """`pf run create`'s flags, on our command line; `-f FILE` reads a run file that the
    other flags override, as in Prompt flow. Problems name their flag (or FILE:LINE:COL)."""
    here = (cwd or Path.cwd()).absolute()
    args = _flag_parser().parse_args(argv)
    if args.connections:
        raise UsageError("--connections: give the import `--model-map DEPLOYMENT=MODEL` instead")
    raw: dict[str, Any] = {}
    where = _Where(None, cwd=here)
    base = here
    if args.file:
        raw, source = _read(here / args.file)
        where, base = _Where(source, cwd=here), (here / args.file).parent.absolute()
    mapping = name_values(args.column_mapping, "--column-mapping", "INPUT='${data.COLUMN}'")
    env = name_values(args.environment_variables, "--environment-variables", "NAME=VALUE")
    given = {
        "flow": args.flow, "data": args.data, "run": args.run, "variant": args.variant,
        "name": args.name, "column_mapping": mapping, "environment_variables": env,
    }  # fmt: skip
    for key, value in given.items():
        if value:
            if isinstance(value, dict) and isinstance(raw.get(key), dict):
                value = {**raw[key], **value}
            raw[key] = value
            where.flags.add(key)
    if "flow" not in raw:
        raise UsageError("give --flow DIR (or -f run.yml): the flow the run runs")
    return _checked(raw, where, base, nested=False)


@dataclass
class _Where:
    """Locates a problem: in the run file, or at the flag it was given with."""

    source: Source | None
    flags: set[str] = field(default_factory=set)
    cwd: Path | None = None
    """Where the flags were given: their paths are the shell's, not the run file's."""
    found: list[Problem | str] = field(default_factory=list)

    def add(self, path: tuple[str, ...], message: str, at_key: bool = False) -> None:
        if self.source is not None and not (path and path[0] in self.flags):
            self.found.append(self.source.problem(path, message, at_key=at_key))
        elif not path:
            self.found.append(message)
        else:
            shown = f"{FLAGS[path[0]]} {path[1]}" if len(path) > 1 else FLAGS[path[0]]
            self.found.append(f"{shown}: {message}")

    def base(self, key: str, file_base: Path) -> Path:
        return self.cwd if self.cwd is not None and key in self.flags else file_base

    def raise_found(self) -> None:
        if all(isinstance(found, Problem) for found in self.found):
            raise DefinitionError([p for p in self.found if isinstance(p, Problem)])
        raise UsageError("\n".join(str(found) for found in self.found))


def _checked(raw: dict[str, Any], where: _Where, base: Path, nested: bool) -> RunSpec:
    """The run's fields checked, every problem collected; `nested`: a run evaluated by
    another, which may not name a run of its own."""
    for key in raw:
        if key == "connections":
            message = "connections: give the import `--model-map DEPLOYMENT=MODEL` instead"
            where.add((key,), message, at_key=True)
        elif key not in KEYS | DESCRIPTIVE:
            where.add((str(key),), f"unknown key {key!r}{suggest(str(key), KEYS)}", at_key=True)
    flow = _flow(raw.get("flow"), where, where.base("flow", base))
    data = _data(raw.get("data"), where, where.base("data", base))
    mapping = _mapping(raw.get("column_mapping"), where)
    variant = _variant(raw.get("variant"), where)
    name, env = _text(raw.get("name"), "name", where), _environment(raw, where)
    run = None
    if raw.get("run") is not None:
        if nested:
            where.add(("run",), "a run that another run evaluates cannot evaluate a run itself")
        else:
            run = _referenced(raw["run"], where, where.base("run", base))
    for variable, value in mapping.items():
        if value.source.startswith("run.") and raw.get("run") is None:
            shown = f"${{{value.source}.{value.name}}}"
            where.add(("column_mapping", variable), f"{shown} needs `run:`, the run evaluated")
        if value.source == "value" and raw.get("run") is None:
            message = (
                f"a fixed value for every line: `eval` takes each input from the data; add a "
                f"column, or give the flow's input {variable!r} that default"
            )
            where.add(("column_mapping", variable), message)
    if run is not None and variant is not None:
        where.add(("variant",), "an evaluation runs the variant of the run it evaluates")
    if run is not None and data is not None and run.data is not None and data != run.data:
        message = f"the lines are those of the run evaluated ({run.data.name}): give it or none"
        where.add(("data",), message)
    if data is None and (run is None or run.data is None) and "data" not in raw:
        where.add((), "a run needs `data:`, the lines it runs on")
    if where.found or flow is None:
        where.raise_found()
    assert flow is not None
    origin = where.source.file if where.source else "the command line"
    return RunSpec(
        origin=origin, flow=flow, data=data, column_mapping=mapping, variant=variant, run=run,
        name=name, environment_variables=env,
    )  # fmt: skip


def _flow(given: Any, where: _Where, base: Path) -> Path | None:
    if given is None:
        where.add((), "a run needs `flow:`, the flow's folder")
        return None
    text = _text(given, "flow", where)
    if text is None:
        return None
    path = _path(base, text)
    if path.name == FLOW_FILE and path.is_file():
        path = path.parent
    if not (path / FLOW_FILE).is_file():
        what = "no flow folder" if not path.is_dir() else f"no {FLOW_FILE} in"
        where.add(("flow",), f"{what} {text!r}")
        return None
    return path


def _data(given: Any, where: _Where, base: Path) -> Path | None:
    text = _text(given, "data", where)
    if text is None:
        return None
    if "://" in text or text.startswith("azureml:"):
        where.add(("data",), f"{text!r} is remote: download it and give the local file")
        return None
    path = _path(base, text)
    if not path.is_file():
        where.add(("data",), f"no data file {text!r}")
        return None
    return path


def _mapping(given: Any, where: _Where) -> dict[str, ColumnValue]:
    if given is None:
        return {}
    if not isinstance(given, dict):
        where.add(("column_mapping",), "a mapping INPUT: ${data.COLUMN}")
        return {}
    found = {}
    for variable, value in given.items():
        text = value if isinstance(value, str) else json.dumps(value)
        match = _REFERENCE.match(text.strip())
        if match:
            found[str(variable)] = ColumnValue.model_validate(
                {"source": match[1], "name": match[2]}
            )
        elif "${" in text:
            message = (
                f"{text!r}: write ${{data.COLUMN}}, ${{run.outputs.NAME}} or ${{run.inputs.NAME}}"
            )
            where.add(("column_mapping", str(variable)), message)
        else:
            found[str(variable)] = ColumnValue(source="value", name=text)
    return found


def _variant(given: Any, where: _Where) -> VariantChoice | None:
    text = _text(given, "variant", where)
    if text is None:
        return None
    match = _VARIANT.match(text.strip())
    if match is None:
        where.add(("variant",), f"{text!r}: write ${{NODE.VARIANT_ID}}, as ${{answer.variant_1}}")
        return None
    return VariantChoice(node=match[1], variant=match[2])


def _environment(raw: dict[str, Any], where: _Where) -> dict[str, str]:
    given = raw.get("environment_variables")
    if given is None:
        return {}
    if not isinstance(given, dict):
        where.add(("environment_variables",), "a mapping NAME: VALUE")
        return {}
    found = {}
    for key, value in given.items():
        text = value if isinstance(value, str) else json.dumps(value)
        if "${" in text:
            message = "a connection's key: declare it as a secret on the worker (SECRET_NAME)"
            where.add(("environment_variables", str(key)), message)
        found[str(key)] = text
    return found


def _referenced(given: Any, where: _Where, base: Path) -> RunSpec | None:
    """The evaluated run: a run file named by path, or the run file here named `given`."""
    text = _text(given, "run", where)
    if text is None:
        return None
    found = _path(base, text) if _path(base, text).is_file() else _named_run(base, text)
    if found is None:
        message = f"no run {text!r}: name its run file, or one beside this with `name: {text}`"
        where.add(("run",), message)
        return None
    raw, source = _read(found)
    return _checked(raw, _Where(source), found.parent.absolute(), nested=True)


def _read(path: Path) -> tuple[dict[str, Any], Source]:
    source = read_yaml(path, "a run file")
    if not isinstance(source.data, dict):
        message = "a run file is a mapping: flow, data, column_mapping, ..."
        raise DefinitionError([Problem(source.file, 1, 1, message)])
    return dict(source.data), source


def _named_run(folder: Path, name: str) -> Path | None:
    for path in sorted([*folder.glob("*.yml"), *folder.glob("*.yaml")]):
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            continue
        if isinstance(data, dict) and data.get("name") == name and "flow" in data:
            return path
    return None


def _text(given: Any, key: str, where: _Where) -> str | None:
    if given is None:
        return None
    if not isinstance(given, str) or not given.strip():
        where.add((key,), f"{key}: write a text")
        return None
    return given


def _path(base: Path, text: str) -> Path:
    return Path(os.path.normpath(base / text))


class _FlagParser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:
        raise UsageError(f"pf run create flags: {message}")


def _flag_parser() -> argparse.ArgumentParser:
    parser = _FlagParser(prog="pf run create", add_help=False)
    parser.add_argument("-f", "--file")
    parser.add_argument("--flow")
    parser.add_argument("--data")
    parser.add_argument("--column-mapping", nargs="+", action="extend", default=[])
    parser.add_argument("--run")
    parser.add_argument("--variant")
    parser.add_argument("--name", "-n")
    parser.add_argument("--environment-variables", nargs="+", action="extend", default=[])
    parser.add_argument("--connections", nargs="+", action="extend", default=[])
    parser.add_argument("--stream", "-s", action="store_true")  # our progress line is shown anyway
    return parser
