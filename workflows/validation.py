"""Validate a definition file, reporting every problem at once, each at its line and column."""

from __future__ import annotations

import gc
import json
import re
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from workflows import definition as model
from workflows.actions import ACTION_PARAMS
from workflows.checks import cross_checks
from workflows.definition import Definition, definition_model
from workflows.errors import DefinitionError, Problem, VariablesError
from workflows.source import Path, Source, parse_yaml
from workflows.step_types import BUILT_IN, StepTypes
from workflows.suggest import suggest

_PARENTS: dict[str, type[BaseModel]] = {
    "retry": model.RetrySpec,
    "defaults": model.LlmDefaults,
    "outputs": model.OutputSpec,
    "validate": model.ValidateSpec,
    "variables": model.VariableSpec,
}


def _model_at(data: Any, path: Path, step_types: StepTypes) -> tuple[type[BaseModel] | None, str]:
    """The model whose fields belong at `path`, and how to name it in a message."""
    if path == ():
        return model.Definition, "the file"
    if path == ("workflow",):
        return model.WorkflowSpec, "workflow"
    if len(path) == 3 and path[:2] == ("workflow", "steps"):
        step = data["workflow"]["steps"][path[2]]
        kind = step.get("type") if isinstance(step, dict) else None
        found = step_types.by_name.get(kind) if isinstance(kind, str) else None
        return found, f"a step of type {kind}"
    for key in reversed(path):
        if isinstance(key, str) and key in _PARENTS:
            return _PARENTS[key], key
    return None, ""


def _fields(found: type[BaseModel]) -> set[str]:
    return {info.alias or key for key, info in found.model_fields.items()}


def load_definition(
    text: str,
    file: str,
    actions: Mapping[str, type[BaseModel]] = ACTION_PARAMS,
    validators: Collection[str] = (),
    step_types: StepTypes = BUILT_IN,
) -> Definition:
    """Parse and validate a definition; raise DefinitionError listing every problem.

    `actions` are the params models of the actions a worker runs (built-ins by default),
    `validators` the names of the validators it runs (none by default), `step_types` the
    step types it runs (the built-in ones by default)."""
    return load_with_source(text, file, actions, validators, step_types)[1]


def load_with_source(
    text: str,
    file: str,
    actions: Mapping[str, type[BaseModel]] = ACTION_PARAMS,
    validators: Collection[str] = (),
    step_types: StepTypes = BUILT_IN,
) -> tuple[Source, Definition]:
    """Like load_definition, keeping the source so later problems can be located too."""
    with _collector_paused():
        source = parse_yaml(text, file)
        problems = source.problems + cross_checks(source, actions, validators, step_types)
        try:
            definition = definition_model(step_types).model_validate(source.data)
        except ValidationError as exc:
            problems += _model_problems(source, exc, step_types)
    if problems:
        raise DefinitionError(sorted(set(problems), key=lambda p: (p.line, p.col, p.message)))
    return source, definition


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Validation makes hundreds of thousands of objects (nodes, marks, paths) and no cycles:
    Python's cycle collector, run again and again as they pile up, was half its time. It is
    paused while a definition is checked (and left as it was found: another thread that
    paused it too restores it)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _model_problems(source: Source, exc: ValidationError, step_types: StepTypes) -> list[Problem]:
    problems = []
    for error in exc.errors():
        path, rest = _resolve(source.data, error["loc"])
        kind = error["type"]
        if kind == "extra_forbidden":
            key = str(path[-1])
            found, where = _model_at(source.data, path[:-1], step_types)
            fields = _fields(found) if found else set()
            message = f"unknown field '{key}'" + (f" in {where}" if where else "")
            message += suggest(key, fields - {key})
            problems.append(source.problem(path, message, at_key=True))
        elif kind == "missing":
            problems.append(source.problem(path, f"missing required field '{rest[0]}'"))
        elif kind == "union_tag_invalid":
            tag = error["ctx"]["tag"]
            shown = tag if len(tag) <= 40 else tag[:40] + "..."
            message = f"unknown step type {shown!r}" + suggest(tag, set(step_types.names))
            message += f" (step types: {', '.join(step_types.names)})"
            problems.append(source.problem((*path, "type"), message))
        elif kind == "string_pattern_mismatch":
            rule = _PATTERN_RULES.get(
                error["ctx"]["pattern"], f"must match {error['ctx']['pattern']}"
            )
            problems.append(source.problem(path, f"{path[-1]}: {error['input']!r} {rule}"))
        elif kind == "literal_error":
            given, expected = error["input"], error["ctx"]["expected"]
            message = f"{path[-1]}: {given!r} is not one of {expected}"
            if isinstance(given, str):
                choices = set(re.findall(r"'([^']*)'", expected))
                near = _SYNONYMS.get(given.lower())
                message += (
                    f" — did you mean '{near}'?" if near in choices else suggest(given, choices)
                )
            problems.append(source.problem(path, message))
        elif kind == "union_tag_not_found":
            problems.append(source.problem(path, "missing required field 'type'"))
        elif kind in ("model_type", "model_attributes_type", "dict_type"):
            problems.append(source.problem(path, f"{_describe(path)} must be a mapping"))
        elif kind == "too_short":
            minimum = error["ctx"]["min_length"]
            message = f"{_describe(path)} needs at least {minimum} item{'s' * (minimum > 1)}"
            problems.append(source.problem(path, message))
        else:
            where = ".".join(str(part) for part in path[-1:]) or "workflow"
            if len(path) > 1 and isinstance(path[-1], int):  # an item: name its list
                where = str(path[-2])
            message = _plain(error) or error["msg"].removeprefix("Value error, ")
            problems.append(source.problem(path, f"{where}: {message}"))
    return problems


def _plain(error: Any) -> str | None:
    """Pydantic's common complaints in the words the rest of our messages use."""
    kind, ctx, given = error["type"], error.get("ctx") or {}, error.get("input")
    shown = repr(given) if len(repr(given)) <= 60 else repr(given)[:60] + "..."
    if isinstance(given, dict | list):
        shown = "a mapping" if isinstance(given, dict) else "a list"
    if kind == "list_type":
        return f"must be a list, got {shown}"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        words = {"greater_than_equal": ("at least", "ge"), "greater_than": ("more than", "gt")}
        words |= {"less_than_equal": ("at most", "le"), "less_than": ("less than", "lt")}
        said, key = words[kind]
        return f"must be {said} {ctx.get(key)}, got {shown}"
    if kind in ("float_parsing", "float_type"):
        return f"must be a number, got {shown}"
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return f"must be a whole number, got {shown}"
    if kind in ("bool_parsing", "bool_type"):
        return f"must be true or false, got {shown}"
    if kind == "string_type":
        return f"must be text, got {shown}"
    if kind == "string_too_long":
        return f"must be at most {ctx.get('max_length')} characters, got {len(str(given))}"
    return None


_SYNONYMS = {
    **dict.fromkeys(["float", "double", "decimal", "int64", "numeric"], "number"),
    **dict.fromkeys(["int", "long"], "integer"),
    **dict.fromkeys(["str", "text"], "string"),
    **dict.fromkeys(["bool"], "boolean"),
    **dict.fromkeys(["dict", "map", "mapping", "json"], "object"),
    **dict.fromkeys(["list", "sequence", "tuple"], "array"),
}
"""What other languages call our types, for the suggestion after an unknown one."""


def _describe(path: Path) -> str:
    """How a message names the place: the file, a field, or a step by its position."""
    if not path:
        return "the file (a mapping with a 'workflow' key)"
    if len(path) == 3 and path[:2] == ("workflow", "steps"):
        return f"step {int(path[2]) + 1}"
    return f"'{path[-1]}'"


_PATTERN_RULES = {
    model.IDENTIFIER: "must be an identifier (letters, digits and '_', not starting with a digit)",
    model.NAME: "may contain only letters, digits, '_' and '-'",
}


def _resolve(data: Any, loc: tuple[Any, ...]) -> tuple[Path, tuple[Any, ...]]:
    """The part of pydantic's loc that exists in the data (union tags are skipped), and the rest."""
    path: Path = ()
    current = data
    for index, part in enumerate(loc):
        if _has_child(current, part):
            current = current[part]
        elif isinstance(current, dict | list):
            if isinstance(current, dict) and index == len(loc) - 1:
                return path, (part,)
            continue
        else:
            return path, tuple(loc[index:])
        path = (*path, part)
    return path, ()


def _has_child(data: Any, part: Any) -> bool:
    if isinstance(data, dict):
        return part in data
    return isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data)


def resolve_variables(definition: Definition, given: dict[str, Any]) -> dict[str, Any]:
    """The run's variables: declared defaults overridden by the given values, checked."""
    declared = definition.workflow.variables
    problems = []
    for name in sorted(set(given) - set(declared)):
        problems.append(f"unknown variable '{name}'" + suggest(name, set(declared)))
    values: dict[str, Any] = {}
    for name, spec in declared.items():
        if name in given:
            values[name] = given[name]
        elif spec.required:
            problems.append(f"variable '{name}' is required: pass it with --var {name}=...")
            continue
        else:
            values[name] = spec.default
        if spec.type and name in values and not has_type(values[name], spec.type):
            problems.append(f"variable '{name}' must be of type {spec.type}, got {values[name]!r}")
    if problems:
        raise VariablesError("; ".join(problems))
    return values


_PYTHON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "number": (int, float),
    "integer": (int,),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
}


def has_type(value: Any, type_name: str) -> bool:
    """Whether a value is of a declared type (null fits any; a boolean is not a number)."""
    if value is None:
        return True
    if isinstance(value, bool) and type_name != "boolean":
        return False
    return isinstance(value, _PYTHON_TYPES[type_name])


def typed_variables(definition: Definition, texts: dict[str, str]) -> dict[str, Any]:
    """Variables given as text (`--var name=value`): a variable declared as a string (or
    defaulting to one) keeps the text as written, unless the whole text is one quoted string
    (`"01234"` is `01234` for every variable, as a shell user expects); others are read by
    `read_text_value`, so `3` is a number and `[a, b]` a list."""
    declared = definition.workflow.variables
    values: dict[str, Any] = {}
    for name, text in texts.items():
        spec = declared.get(name)
        if spec is not None and (
            spec.type == "string" or (spec.type is None and isinstance(spec.default, str))
        ):
            values[name] = _unquoted(text)
            continue
        values[name] = read_text_value(text)
    return values


_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\']|\'\')*\'', re.DOTALL)


def _unquoted(text: str) -> str:
    """The text inside one quoted YAML string (`"a"`, `'it''s'`), or the text as written."""
    if not _QUOTED.fullmatch(text):
        return text
    try:
        value = yaml.safe_load(text)
    except (yaml.YAMLError, RecursionError):
        return text
    return value if isinstance(value, str) else text


_JSON_NUMBER = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")
_WORDS: dict[str, Any] = {"true": True, "false": False, "null": None}


def read_text_value(text: str) -> Any:
    """A value typed at a command line: a JSON-style number, `true`, `false` or `null`; a
    quoted string, list or mapping read as YAML; anything else the text as written. Plain
    YAML would read `01234` as the octal 668 and `1:20` as 80."""
    if _JSON_NUMBER.fullmatch(text):
        return json.loads(text)
    if text.lower() in _WORDS:
        return _WORDS[text.lower()]
    if text[:1] in ("[", "{", '"', "'"):
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError:
            return text
        except RecursionError:  # thousands of levels: refused in one line, as the converter's
            raise VariablesError(TOO_DEEP_TO_READ) from None
    return text


TOO_DEEP_TO_READ = "a value nests too many levels of lists and mappings to read"
