"""Checks across a definition that a field-by-field model cannot make: unique ids and output
names, model routing, and what each template refers to.

They read the raw parsed YAML, so they still report when the model found other problems:
a user sees every problem in one pass.
"""

from __future__ import annotations

import difflib
import re
from typing import Any

from workflows.errors import Problem, TemplateError
from workflows.routing import route
from workflows.source import Path, Source
from workflows.templates import references

RESERVED_NAMES = {"steps", "run", "secrets", "loop"}
TEMPLATE_FIELDS = ("prompt", "system", "when")


def suggest(word: str, choices: set[str]) -> str:
    close = difflib.get_close_matches(word, sorted(choices), n=1)
    return f" — did you mean '{close[0]}'?" if close else ""


def cross_checks(source: Source) -> list[Problem]:
    spec = _dict(source.data.get("workflow")) if isinstance(source.data, dict) else {}
    variables = {str(name) for name in _dict(spec.get("variables"))}
    default_model = _dict(spec.get("defaults")).get("model")
    problems = [
        source.problem(("workflow", "variables", name), f"'{name}' is a reserved name", at_key=True)
        for name in sorted(variables & RESERVED_NAMES)
    ]
    finished: set[str] = set()
    visible = set(variables)
    output_owner: dict[str, str] = {}
    steps = spec.get("steps")
    for index, step in enumerate(steps if isinstance(steps, list) else []):
        if not isinstance(step, dict):
            continue
        path: Path = ("workflow", "steps", index)
        step_id = step.get("id")
        if isinstance(step_id, str) and step_id in finished:
            problems.append(source.problem((*path, "id"), f"duplicate step id '{step_id}'"))
        problems += _model_problems(source, path, step, default_model)
        for field in TEMPLATE_FIELDS:
            if isinstance(step.get(field), str):
                problems += template_problems(source, (*path, field), visible, finished)
        for out_path, name in _output_names(path, step):
            if name in variables:
                message = f"output '{name}' shadows the variable of that name"
            elif name in output_owner:
                message = (
                    f"output name '{name}' is already used by step '{output_owner[name]}' "
                    "(output names are unique in a file)"
                )
            elif name in RESERVED_NAMES:
                message = f"'{name}' is a reserved name"
            else:
                output_owner[name] = str(step_id)
                visible.add(name)
                continue
            problems.append(source.problem(out_path, message))
        if isinstance(step_id, str):
            finished.add(step_id)
    for name, template in _dict(spec.get("outputs")).items():
        if isinstance(template, str):
            problems += template_problems(source, ("workflow", "outputs", name), visible, finished)
    return problems


def _model_problems(source: Source, path: Path, step: dict, default_model: Any) -> list[Problem]:
    problems = []
    if step.get("model") is None and default_model is None and step.get("type") == "llm_call":
        message = f"step '{step.get('id')}' has no model: set 'model' here or in workflow.defaults"
        problems.append(source.problem(path, message))
    named: list[tuple[Path, Any]] = [((*path, "model"), step.get("model"))]
    fallbacks = step.get("fallback_models")
    if isinstance(fallbacks, list):
        named += [((*path, "fallback_models", i), name) for i, name in enumerate(fallbacks)]
    for model_path, name in named:
        if isinstance(name, str):
            try:
                route(name)
            except ValueError as exc:
                problems.append(source.problem(model_path, str(exc)))
    outputs = step.get("outputs")
    if isinstance(outputs, list) and (
        len(outputs) > 1
        or any(isinstance(o, dict) and o.get("type", "string") != "string" for o in outputs)
    ):
        message = (
            "structured outputs (several outputs, or a non-string one) are part of DSL v1 but "
            "this engine does not run them yet: declare one string output"
        )
        problems.append(source.problem((*path, "outputs"), message))
    return problems


def _output_names(path: Path, step: dict) -> list[tuple[Path, str]]:
    outputs = step.get("outputs")
    found = []
    for index, output in enumerate(outputs if isinstance(outputs, list) else []):
        if isinstance(output, str):
            found.append(((*path, "outputs", index), output))
        elif isinstance(output, dict) and isinstance(output.get("name"), str):
            found.append(((*path, "outputs", index, "name"), output["name"]))
    return found


def template_problems(
    source: Source, path: Path, visible: set[str], finished: set[str]
) -> list[Problem]:
    template = source.value(path)
    try:
        names, step_ids = references(template)
    except TemplateError as exc:
        return [source.problem_in_text(path, exc.lineno or 1, 0, str(exc))]
    problems = []
    for name in sorted(names - visible - RESERVED_NAMES):
        message = f"unknown name '{name}' in template" + suggest(name, visible)
        problems.append(_at_word(source, path, template, name, message))
    for step_id in sorted(step_ids - finished):
        message = f"'steps.{step_id}' is not a step that has finished before this one"
        problems.append(_at_word(source, path, template, step_id, message))
    return problems


def _at_word(source: Source, path: Path, template: str, word: str, message: str) -> Problem:
    """Point at the word's first use inside the template, not just at the field."""
    match = re.search(rf"\b{re.escape(word)}\b", template)
    if match is None:
        return source.problem(path, message)
    before = template[: match.start()]
    line = before.count("\n") + 1
    col = match.start() - (before.rfind("\n") + 1)
    return source.problem_in_text(path, line, col, message)


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}
