"""Validate a definition file, reporting every problem at once, each at its line and column."""

from __future__ import annotations

import difflib
from typing import Any

from pydantic import BaseModel, ValidationError

from workflows import definition as model
from workflows.definition import Definition, LlmCallStep
from workflows.errors import DefinitionError, Problem, TemplateError, VariablesError
from workflows.routing import route
from workflows.source import Path, Source, parse_yaml
from workflows.templates import references

RESERVED_NAMES = {"steps", "run", "secrets", "loop"}
NOT_YET_SUPPORTED = {"depends_on", "for_each", "as", "concurrency", "validate", "max_reasks"}
"""DSL v1 fields this engine does not run yet: refused by name rather than called unknown."""


def _field_names() -> set[str]:
    names: set[str] = set()
    for value in vars(model).values():
        if isinstance(value, type) and issubclass(value, BaseModel):
            names |= set(value.model_fields)
    return names


def load_definition(text: str, file: str) -> Definition:
    """Parse and validate a definition; raise DefinitionError listing every problem."""
    source = parse_yaml(text, file)
    try:
        definition = Definition.model_validate(source.data)
    except ValidationError as exc:
        raise DefinitionError(_model_problems(source, exc)) from None
    problems = _semantic_problems(source, definition)
    if problems:
        raise DefinitionError(problems)
    return definition


def _model_problems(source: Source, exc: ValidationError) -> list[Problem]:
    problems = []
    known = _field_names()
    for error in exc.errors():
        path, rest = _resolve(source.data, error["loc"])
        kind = error["type"]
        if kind == "extra_forbidden":
            key = str(path[-1])
            if key in NOT_YET_SUPPORTED:
                message = f"'{key}' is part of DSL v1 but this engine does not run it yet"
            else:
                message = f"unknown field '{key}'" + _suggest(key, known)
            problems.append(source.problem(path, message, at_key=True))
        elif kind == "missing":
            problems.append(source.problem(path, f"missing required field '{rest[0]}'"))
        elif kind == "union_tag_invalid":
            tag = error["ctx"]["tag"]
            message = f"unknown step type '{tag}'" + _suggest(tag, set(model.STEP_TYPES))
            message += f" (this engine runs: {', '.join(model.STEP_TYPES)})"
            problems.append(source.problem((*path, "type"), message))
        elif kind == "string_pattern_mismatch":
            rule = _PATTERN_RULES.get(
                error["ctx"]["pattern"], f"must match {error['ctx']['pattern']}"
            )
            problems.append(source.problem(path, f"{path[-1]}: {error['input']!r} {rule}"))
        elif kind == "union_tag_not_found":
            problems.append(source.problem(path, "missing required field 'type'"))
        else:
            where = ".".join(str(part) for part in path[-1:]) or "workflow"
            message = error["msg"].removeprefix("Value error, ")
            problems.append(source.problem(path, f"{where}: {message}"))
    return problems


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


def _suggest(word: str, choices: set[str]) -> str:
    close = difflib.get_close_matches(word, sorted(choices), n=1)
    return f" — did you mean '{close[0]}'?" if close else ""


def _semantic_problems(source: Source, definition: Definition) -> list[Problem]:
    spec = definition.workflow
    problems: list[Problem] = []
    steps_path: Path = ("workflow", "steps")
    variables = set(spec.variables)
    for name in variables & RESERVED_NAMES:
        problems.append(
            source.problem(
                ("workflow", "variables", name), f"'{name}' is a reserved name", at_key=True
            )
        )
    seen_steps: set[str] = set()
    visible = set(variables)
    output_owner: dict[str, str] = {}
    for index, step in enumerate(spec.steps):
        path: Path = (*steps_path, index)
        if step.id in seen_steps:
            problems.append(source.problem((*path, "id"), f"duplicate step id '{step.id}'"))
        problems += _step_problems(source, path, step, visible, seen_steps, spec.defaults.model)
        for out_index, output in enumerate(step.outputs):
            out_path = (*path, "outputs", out_index, "name")
            if output.name in variables:
                message = f"output '{output.name}' shadows the variable of that name"
                problems.append(source.problem(out_path, message))
            elif output.name in output_owner:
                message = (
                    f"output name '{output.name}' is already used by step "
                    f"'{output_owner[output.name]}' (output names are unique in a file)"
                )
                problems.append(source.problem(out_path, message))
            elif output.name in RESERVED_NAMES:
                problems.append(source.problem(out_path, f"'{output.name}' is a reserved name"))
            output_owner.setdefault(output.name, step.id)
            visible.add(output.name)
        seen_steps.add(step.id)
    for name, template in spec.outputs.items():
        problems += _template_problems(
            source, ("workflow", "outputs", name), template, visible, seen_steps
        )
    return problems


def _step_problems(
    source: Source,
    path: Path,
    step: LlmCallStep,
    visible: set[str],
    earlier_steps: set[str],
    default_model: str | None,
) -> list[Problem]:
    problems: list[Problem] = []
    model_name = step.model or default_model
    if model_name is None:
        message = f"step '{step.id}' has no model: set 'model' here or in workflow.defaults"
        problems.append(source.problem(path, message))
    named: list[tuple[Path, str | None]] = [((*path, "model"), step.model)]
    named += [((*path, "fallback_models", i), m) for i, m in enumerate(step.fallback_models)]
    for model_path, name in named:
        if name is None:
            continue
        try:
            route(name)
        except ValueError as exc:
            problems.append(source.problem(model_path, str(exc)))
    if len(step.outputs) > 1 or any(output.type != "string" for output in step.outputs):
        message = (
            "structured outputs (several outputs, or a non-string one) are part of DSL v1 but "
            "this engine does not run them yet: declare one string output"
        )
        problems.append(source.problem((*path, "outputs"), message))
    for field in ("prompt", "system", "when"):
        template = getattr(step, field)
        if template is not None:
            problems += _template_problems(source, (*path, field), template, visible, earlier_steps)
    return problems


def _template_problems(
    source: Source, path: Path, template: str, visible: set[str], earlier_steps: set[str]
) -> list[Problem]:
    try:
        names, step_ids = references(template)
    except TemplateError as exc:
        return [source.problem(path, str(exc))]
    problems = []
    for name in sorted(names - visible - RESERVED_NAMES):
        message = f"unknown name '{name}' in template" + _suggest(name, visible)
        problems.append(source.problem(path, message))
    for step_id in sorted(step_ids - earlier_steps):
        message = f"'steps.{step_id}' is not a step that has finished before this one"
        problems.append(source.problem(path, message))
    return problems


def resolve_variables(definition: Definition, given: dict[str, Any]) -> dict[str, Any]:
    """The run's variables: declared defaults overridden by the given values, checked."""
    declared = definition.workflow.variables
    problems = []
    for name in sorted(set(given) - set(declared)):
        problems.append(f"unknown variable '{name}'" + _suggest(name, set(declared)))
    values: dict[str, Any] = {}
    for name, spec in declared.items():
        if name in given:
            values[name] = given[name]
        elif spec.required:
            problems.append(f"variable '{name}' is required: pass it with --var {name}=...")
            continue
        else:
            values[name] = spec.default
        if spec.type and name in values and not _has_type(values[name], spec.type):
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


def _has_type(value: Any, type_name: str) -> bool:
    if value is None:
        return True
    if isinstance(value, bool) and type_name != "boolean":
        return False
    return isinstance(value, _PYTHON_TYPES[type_name])
